//! The compiled signature matcher.
//!
#![doc = include_str!("matcher.md")]

use cairn_ingest::Event;
use cairn_ingest::hash::FnvMap;

use crate::compile::{
    CompileOptions, CompiledRuleInfo, Expr, NeedleId, Program, SlotId, Test, View, compile_program,
};
use crate::error::Rejection;
use crate::field::{FieldRef, SlotValue, Source, header_source, render_value, source_value};
use crate::rule::Rule;
use crate::scan::{LiteralScanner, NeedleSpec};

/// A compiled rule's position in its [`Matcher`] (or [`crate::NaiveMatcher`]): `0..len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleIndex(pub u32);

/// The literal scanner of one field slot (both case sensitivities).
#[derive(Debug)]
struct SlotScan {
    slot: SlotId,
    scanner: LiteralScanner,
}

/// All rules compiled into shared per-field literal scanners (an anchor filter plus aho-corasick
/// for short needles) and exact evaluation of the candidate rules.
///
/// Immutable after [`Matcher::compile`], `Send + Sync`: share it as `Arc<Matcher>` between
/// parse workers, each with its own [`MatchScratch`]. Rebuild and swap the `Arc` to reload.
#[derive(Debug)]
pub struct Matcher {
    program: Program,
    scans: Vec<SlotScan>,
    header_slots: Vec<(SlotId, FieldRef)>,
    named_slots: FnvMap<Box<str>, SlotId>,
    sd_slots: FnvMap<Box<str>, FnvMap<Box<str>, SlotId>>,
    /// Needle → rules whose required set holds it.
    needle_rules: Vec<Vec<u32>>,
    /// Needles inside an automaton (false only if an automaton could not be built).
    scannable: Vec<bool>,
    /// Rules evaluated for every event.
    always: Vec<u32>,
}

/// Per-worker reusable buffers for [`Matcher::match_event`]. No allocation per event once warm.
#[derive(Debug, Default)]
pub struct MatchScratch {
    generation: u32,
    hit_generation: Vec<u32>,
    hit_flags: Vec<u8>,
    rule_generation: Vec<u32>,
    candidates: Vec<u32>,
    sources: Vec<Source>,
    rendered: Vec<String>,
    /// ASCII-lowercased copy of the field being scanned.
    lowered: Vec<u8>,
}

impl MatchScratch {
    fn prepare(&mut self, needles: usize, rules: usize, slots: usize) {
        if self.hit_generation.len() != needles
            || self.rule_generation.len() != rules
            || self.sources.len() != slots
            || self.generation == u32::MAX
        {
            self.generation = 0;
            self.hit_generation = vec![0; needles];
            self.hit_flags = vec![0; needles];
            self.rule_generation = vec![0; rules];
            self.sources = vec![Source::Absent; slots];
            self.rendered = vec![String::new(); slots];
        }
        self.generation += 1;
        self.candidates.clear();
        self.sources.fill(Source::Absent);
    }
}

impl Matcher {
    /// Compiles the detection rules among `rules` (correlation rules are skipped). Rules that
    /// fail to compile (bad regex, CIDR, limits…) are returned as rejections; the others work.
    pub fn compile(rules: &[Rule], options: &CompileOptions) -> (Matcher, Vec<Rejection>) {
        let (mut program, rejections) = compile_program(rules, options);
        let mut header_slots = Vec::new();
        let mut named_slots = FnvMap::default();
        let mut sd_slots: FnvMap<Box<str>, FnvMap<Box<str>, SlotId>> = FnvMap::default();
        for (slot, field) in program.slots.iter().enumerate() {
            let slot = slot as SlotId;
            match field {
                FieldRef::Named(name) => {
                    named_slots.insert(name.clone(), slot);
                }
                FieldRef::Sd { id, param } => {
                    sd_slots
                        .entry(id.clone())
                        .or_default()
                        .insert(param.clone(), slot);
                }
                header => header_slots.push((slot, header.clone())),
            }
        }

        // One scanner per slot, holding both case sensitivities.
        let mut groups: Vec<Vec<NeedleSpec<'_>>> = vec![Vec::new(); program.slots.len()];
        for (needle, key) in program.needles.iter().enumerate() {
            if let Some(group) = groups.get_mut(key.slot as usize) {
                group.push(NeedleSpec {
                    id: needle as NeedleId,
                    text: &key.text,
                    cased: key.cased,
                });
            }
        }
        let mut scans = Vec::new();
        let mut scannable = vec![false; program.needles.len()];
        for (slot, needles) in groups.iter().enumerate() {
            if needles.is_empty() {
                continue;
            }
            // A build failure (short-needle automaton too large) leaves the slot's needles
            // unscannable: their rules are then evaluated for every event and their tests run
            // on the text.
            if let Ok(scanner) = LiteralScanner::new(needles, options.literal_engine) {
                for needle in needles {
                    scannable[needle.id as usize] = true;
                }
                scans.push(SlotScan {
                    slot: slot as SlotId,
                    scanner,
                });
            }
        }
        drop(groups);

        let mut needle_rules = vec![Vec::new(); program.needles.len()];
        let mut always = Vec::new();
        for (index, rule) in program.rules.iter_mut().enumerate() {
            match required_needles(
                &program.predicates,
                &program.needles,
                &scannable,
                &rule.expr,
            ) {
                Some(needles) => {
                    for needle in needles {
                        needle_rules[needle as usize].push(index as u32);
                    }
                    rule.info.prefiltered = true;
                }
                None => always.push(index as u32),
            }
        }
        let matcher = Matcher {
            program,
            scans,
            header_slots,
            named_slots,
            sd_slots,
            needle_rules,
            scannable,
            always,
        };
        (matcher, rejections)
    }

    /// Fresh scratch buffers for one worker.
    pub fn scratch(&self) -> MatchScratch {
        MatchScratch::default()
    }

    /// Clears `out` and fills it with the rules matching `event`, in ascending [`RuleIndex`]
    /// order.
    pub fn match_event(&self, event: &Event, scratch: &mut MatchScratch, out: &mut Vec<RuleIndex>) {
        out.clear();
        scratch.prepare(
            self.program.needles.len(),
            self.program.rules.len(),
            self.program.slots.len(),
        );
        self.resolve_slots(event, scratch);
        let MatchScratch {
            generation,
            hit_generation,
            hit_flags,
            rule_generation,
            candidates,
            sources,
            rendered,
            lowered,
        } = scratch;
        let generation = *generation;
        for scan in &self.scans {
            let slot = scan.slot as usize;
            let Some(value) = source_value(event, sources[slot], &rendered[slot]) else {
                continue;
            };
            scan.scanner.scan(value.text, lowered, |needle, flags| {
                let needle = needle as usize;
                if hit_generation[needle] == generation {
                    hit_flags[needle] |= flags;
                    return;
                }
                hit_generation[needle] = generation;
                hit_flags[needle] = flags;
                for &rule in &self.needle_rules[needle] {
                    if rule_generation[rule as usize] != generation {
                        rule_generation[rule as usize] = generation;
                        candidates.push(rule);
                    }
                }
            });
        }
        let view = FastView {
            event,
            sources,
            rendered,
            hit_generation,
            hit_flags,
            scannable: &self.scannable,
            generation,
        };
        for &rule in candidates.iter().chain(&self.always) {
            if self
                .program
                .eval(&self.program.rules[rule as usize].expr, &view)
            {
                out.push(RuleIndex(rule));
            }
        }
        out.sort_unstable();
    }

    fn resolve_slots(&self, event: &Event, scratch: &mut MatchScratch) {
        for (slot, field) in &self.header_slots {
            scratch.sources[*slot as usize] = header_source(event, field);
        }
        if !self.named_slots.is_empty() {
            for (index, field) in event.fields.iter().enumerate() {
                let Some(&slot) = self.named_slots.get(event.text(&field.name)) else {
                    continue;
                };
                let slot = slot as usize;
                if scratch.sources[slot] == Source::Absent {
                    scratch.sources[slot] = Source::Field(index as u32);
                    render_value(&field.value, &mut scratch.rendered[slot]);
                }
            }
        }
        if self.named_slots.is_empty() && self.sd_slots.is_empty() {
            return;
        }
        for (element_index, element) in event.structured_data.iter().enumerate() {
            let by_id = self.sd_slots.get(event.text(&element.id));
            for (param_index, (name, _)) in element.params.iter().enumerate() {
                let name = event.text(name);
                let source = Source::Sd(element_index as u32, param_index as u32);
                for slot in [
                    by_id.and_then(|params| params.get(name)),
                    self.named_slots.get(name),
                ]
                .into_iter()
                .flatten()
                {
                    if scratch.sources[*slot as usize] == Source::Absent {
                        scratch.sources[*slot as usize] = source;
                    }
                }
            }
        }
    }

    /// The compiled rule at `index`.
    ///
    /// # Panics
    /// When `index` did not come from this matcher (out of range).
    pub fn rule(&self, index: RuleIndex) -> &CompiledRuleInfo {
        &self.program.rules[index.0 as usize].info
    }

    /// All compiled rules, in [`RuleIndex`] order.
    pub fn rules(&self) -> impl Iterator<Item = &CompiledRuleInfo> {
        self.program.rules.iter().map(|rule| &rule.info)
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.program.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.rules.is_empty()
    }

    /// Literals of which at least one must occur in an event's message, host, app, procid or
    /// msgid (ASCII case-insensitively) for *any* rule to match it; `None` when some rule can
    /// match without (it is evaluated on every event, or its required literals are in other
    /// fields). An empty list means no rule can match anything.
    ///
    /// Those five fields are verbatim slices of a syslog line (not of a JSON one, whose values
    /// may be unescaped), so a line that contains none of these literals cannot match: `cairn
    /// replay` uses this to skip extraction and matching of such lines.
    pub fn header_literals(&self) -> Option<Vec<String>> {
        if !self.always.is_empty() {
            return None;
        }
        let mut literals = Vec::new();
        for (needle, rules) in self.needle_rules.iter().enumerate() {
            if rules.is_empty() {
                continue;
            }
            let key = self.program.needles.get(needle)?;
            let verbatim = matches!(
                self.program.slots.get(key.slot as usize),
                Some(
                    FieldRef::Message
                        | FieldRef::Host
                        | FieldRef::App
                        | FieldRef::ProcId
                        | FieldRef::MsgId
                )
            );
            // A lossily decoded line holds U+FFFD where the raw bytes do not.
            if !verbatim || key.text.is_empty() || key.text.contains('\u{fffd}') {
                return None;
            }
            literals.push(key.text.to_string());
        }
        Some(literals)
    }

    /// Figures for `rules check`, metrics and benchmarks.
    pub fn stats(&self) -> MatcherStats {
        MatcherStats {
            rules: self.program.rules.len(),
            always_evaluated: self.always.len(),
            needles: self.program.needles.len(),
            automata: self.scans.len(),
            field_slots: self.program.slots.len(),
        }
    }
}

/// Size figures of a [`Matcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatcherStats {
    pub rules: usize,
    /// Rules evaluated for every event (no required literal).
    pub always_evaluated: usize,
    /// Distinct literal needles.
    pub needles: usize,
    pub automata: usize,
    pub field_slots: usize,
}

struct FastView<'a> {
    event: &'a Event,
    sources: &'a [Source],
    rendered: &'a [String],
    hit_generation: &'a [u32],
    hit_flags: &'a [u8],
    scannable: &'a [bool],
    generation: u32,
}

impl View for FastView<'_> {
    fn value(&self, slot: SlotId) -> Option<SlotValue<'_>> {
        let slot = slot as usize;
        source_value(self.event, self.sources[slot], &self.rendered[slot])
    }

    fn needle_flags(&self, needle: NeedleId) -> Option<u8> {
        let needle = needle as usize;
        if !self.scannable[needle] {
            return None;
        }
        Some(if self.hit_generation[needle] == self.generation {
            self.hit_flags[needle]
        } else {
            0
        })
    }
}

/// A set of needles of which at least one must hit for `expr` to be true (`None`: no such set).
fn required_needles(
    predicates: &[crate::compile::Predicate],
    needles: &[crate::compile::NeedleKey],
    scannable: &[bool],
    expr: &Expr,
) -> Option<Vec<NeedleId>> {
    let recurse = |expr: &Expr| required_needles(predicates, needles, scannable, expr);
    let score = |set: &Vec<NeedleId>| {
        let shortest = set
            .iter()
            .map(|needle| needles[*needle as usize].text.len())
            .min()
            .unwrap_or(usize::MAX);
        (shortest, std::cmp::Reverse(set.len()))
    };
    let mut result = match expr {
        Expr::Not(_) => None,
        Expr::Or(children) => {
            let mut union = Vec::new();
            for child in children {
                union.extend(recurse(child)?);
            }
            Some(union)
        }
        Expr::And(children) => children.iter().filter_map(recurse).max_by_key(score),
        Expr::Pred(id) => {
            let predicate = &predicates[*id as usize];
            if predicate.neq {
                return None;
            }
            let group_needles = |group: &Vec<Test>| -> Option<Vec<NeedleId>> {
                let mut set = Vec::new();
                for test in group {
                    match test {
                        Test::Str {
                            needle: Some(needle),
                            ..
                        } => set.push(*needle),
                        Test::Regex {
                            needles: Some(regex_needles),
                            ..
                        } => set.extend(regex_needles),
                        _ => return None,
                    }
                }
                Some(set)
            };
            if predicate.all {
                predicate
                    .groups
                    .iter()
                    .filter_map(group_needles)
                    .max_by_key(score)
            } else {
                let mut union = Vec::new();
                for group in &predicate.groups {
                    union.extend(group_needles(group)?);
                }
                Some(union)
            }
        }
    };
    if let Some(set) = &mut result {
        if set.iter().any(|needle| !scannable[*needle as usize]) {
            return None;
        }
        set.sort_unstable();
        set.dedup();
    }
    result
}

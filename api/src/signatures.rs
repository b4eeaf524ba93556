//! The live signature set: Sigma detection rules compiled into a [`Matcher`], shared by the parse
//! workers, replaceable at run time (API reload, SIGHUP).
//!
//! Reload protocol: a new [`RuleSet`] is loaded and compiled off to the side; only when every rule
//! loads and compiles is it published (generation counter bumped). A worker checks the generation
//! once per batch (one atomic load) and swaps its `Arc` when it changed, so every batch is matched
//! by exactly one rule set: no event is lost or matched twice across a reload. A reload with any
//! rejected rule leaves the running set in place and reports every reason.
//!
//! Match counts are per rule, counted in a worker-local array and flushed once per batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_correlate::{
    CompileOptions, CorrelationOptions, Correlations, LoadReport, MatchScratch, Matcher,
    ObservationBatch, RuleIndex, RuleKind,
};
use cairn_ingest::Event;
use serde::Serialize;

/// Where rules come from.
#[derive(Debug, Clone)]
pub struct RuleSources {
    /// Load the built-in pack compiled into the binary.
    pub builtin: bool,
    /// Operator rule files and folders (`.yml`/`.yaml`, searched recursively).
    pub paths: Vec<PathBuf>,
    /// Field and logsource mappings (built-in defaults plus `[rules]` config entries), used on
    /// start and on every reload.
    pub options: CompileOptions,
}

/// A rule that could not be used, as reported by `cairn rules check` and the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleProblem {
    pub source: String,
    pub title: Option<String>,
    pub reason: String,
}

/// One compiled rule set with its counters.
#[derive(Debug)]
pub struct RuleSet {
    pub matcher: Matcher,
    /// The label indexed in `signature` for each rule: its id, or its title when it has none.
    labels: Vec<Arc<str>>,
    /// Each rule's title, indexed word by word in `rule`.
    titles: Vec<Arc<str>>,
    matches: Vec<AtomicU64>,
    /// The Sigma correlations over these rules, and which detection rules alert on their own.
    pub correlations: Arc<Correlations>,
    /// Identifies the correlation rules' definitions: two sets with the same fingerprint have
    /// the same correlations in the same order, so the running engine's state stays valid
    /// across a reload that changed only detection rules.
    pub correlation_fingerprint: u64,
}

/// Summary of one rule for `GET /api/v1/rules`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSummary {
    pub id: Option<String>,
    pub title: String,
    pub level: Option<&'static str>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub source: String,
    pub prefiltered: bool,
    pub matches: u64,
}

impl RuleSet {
    /// Loads and compiles every rule that can be used; returns the problems of the others.
    pub fn load(sources: &RuleSources) -> (RuleSet, Vec<RuleProblem>) {
        let mut report = LoadReport::default();
        if sources.builtin {
            report.extend(builtin_pack());
        }
        if !sources.paths.is_empty() {
            report.extend(cairn_correlate::load_rules(&sources.paths));
        }
        let mut problems: Vec<RuleProblem> = report.rejected.iter().map(problem).collect();
        let (matcher, rejected) = Matcher::compile(&report.loaded, &sources.options);
        problems.extend(rejected.iter().map(problem));
        let (correlations, rejected) = Correlations::build(
            &report.loaded,
            &matcher,
            &sources.options.field_mapping,
            &CorrelationOptions::default(),
        );
        problems.extend(rejected.iter().map(problem));
        let correlation_fingerprint = fingerprint_correlations(&report.loaded);
        let labels = matcher
            .rules()
            .map(|info| Arc::from(info.id.clone().unwrap_or_else(|| info.title.clone())))
            .collect();
        let titles = matcher
            .rules()
            .map(|info| Arc::from(info.title.as_str()))
            .collect();
        let matches = (0..matcher.len()).map(|_| AtomicU64::new(0)).collect();
        let set = RuleSet {
            matcher,
            labels,
            titles,
            matches,
            correlations: Arc::new(correlations),
            correlation_fingerprint,
        };
        (set, problems)
    }

    /// Rules with their match counts.
    pub fn summaries(&self) -> Vec<RuleSummary> {
        self.matcher
            .rules()
            .zip(&self.matches)
            .map(|(info, matches)| RuleSummary {
                id: info.id.clone(),
                title: info.title.clone(),
                level: info.level.map(|level| level.name()),
                author: info.author.clone(),
                tags: info.tags.clone(),
                source: info.source.clone(),
                prefiltered: info.prefiltered,
                matches: matches.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The built-in pack compiled into the binary: detection rules and correlations.
fn builtin_pack() -> LoadReport {
    cairn_correlate::builtin::builtin_pack()
}

/// A hash of every correlation document in load order (FNV-1a: stable across runs).
fn fingerprint_correlations(rules: &[cairn_correlate::Rule]) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = cairn_ingest::hash::FnvHasher::default();
    for rule in rules {
        if let RuleKind::Correlation { raw_yaml } = &rule.kind {
            hasher.write(raw_yaml.as_bytes());
            hasher.write(rule.source.as_bytes());
            hasher.write(&[0xff]);
        }
    }
    hasher.finish()
}

fn problem(rejection: &cairn_correlate::Rejection) -> RuleProblem {
    RuleProblem {
        source: rejection.source.clone(),
        title: rejection.title.clone(),
        reason: rejection.reason.clone(),
    }
}

/// The published rule set, shared by the workers and the API.
#[derive(Debug)]
pub struct Signatures {
    sources: RuleSources,
    generation: AtomicU64,
    current: Mutex<Arc<RuleSet>>,
    /// Rules of the set in force that could not be used (start-up loads what it can).
    problems: Mutex<Vec<RuleProblem>>,
    /// Serialises reloads (a reload compiles outside `current`'s lock).
    reload_lock: Mutex<()>,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    pub reloaded: bool,
    pub rules: usize,
    pub generation: u64,
    pub problems: Vec<RuleProblem>,
}

impl Signatures {
    /// Loads the initial set: every rule that can be used runs; the others are logged and listed
    /// by [`Signatures::problems`].
    pub fn load(sources: RuleSources) -> Signatures {
        let (set, problems) = RuleSet::load(&sources);
        for problem in &problems {
            tracing::warn!(source = %problem.source, reason = %problem.reason, "rule rejected");
        }
        tracing::info!(
            rules = set.matcher.len(),
            rejected = problems.len(),
            "rules loaded"
        );
        Signatures {
            sources,
            generation: AtomicU64::new(1),
            current: Mutex::new(Arc::new(set)),
            problems: Mutex::new(problems),
            reload_lock: Mutex::new(()),
        }
    }

    /// Rules that were rejected when the set in force was loaded.
    pub fn problems(&self) -> Vec<RuleProblem> {
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reloads from the same sources. If any rule is rejected the running set stays in force and
    /// the outcome lists every reason.
    pub fn reload(&self) -> ReloadOutcome {
        let _serialised = self
            .reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (set, problems) = RuleSet::load(&self.sources);
        if !problems.is_empty() {
            tracing::warn!(
                problems = problems.len(),
                "rule reload refused; the running rules stay in force"
            );
            for problem in &problems {
                tracing::warn!(source = %problem.source, reason = %problem.reason, "rejected rule");
            }
            return ReloadOutcome {
                reloaded: false,
                rules: self.current().matcher.len(),
                generation: self.generation(),
                problems,
            };
        }
        let rules = set.matcher.len();
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(rules, generation, "rules reloaded");
        ReloadOutcome {
            reloaded: true,
            rules,
            generation,
            problems: Vec::new(),
        }
    }

    /// A worker's private view: its matcher scratch and local counters.
    pub fn worker(self: &Arc<Self>) -> SignatureWorker {
        let set = self.current();
        SignatureWorker {
            signatures: Arc::clone(self),
            generation: self.generation(),
            scratch: set.matcher.scratch(),
            local_counts: vec![0; set.matcher.len()],
            matched: Vec::new(),
            set,
        }
    }
}

/// Per-worker matching state. Not shared.
#[derive(Debug)]
pub struct SignatureWorker {
    signatures: Arc<Signatures>,
    generation: u64,
    set: Arc<RuleSet>,
    scratch: MatchScratch,
    local_counts: Vec<u64>,
    matched: Vec<RuleIndex>,
}

impl SignatureWorker {
    /// Matches a batch with one rule set (picking up a reload between batches, never inside one),
    /// tags each event with the signatures it matched, and returns what the correlation engine
    /// needs from the batch (observations, detection alerts, latest event time) with the rule
    /// set that made it.
    pub fn match_batch(&mut self, events: &mut [Event]) -> (Arc<RuleSet>, ObservationBatch) {
        let generation = self.signatures.generation();
        if generation != self.generation {
            self.set = self.signatures.current();
            self.generation = generation;
            self.scratch = self.set.matcher.scratch();
            self.local_counts = vec![0; self.set.matcher.len()];
        }
        let mut batch = ObservationBatch::default();
        for event in events.iter() {
            batch.saw(event.ts);
        }
        if self.set.matcher.is_empty() {
            return (Arc::clone(&self.set), batch);
        }
        for event in events.iter_mut() {
            self.set
                .matcher
                .match_event(event, &mut self.scratch, &mut self.matched);
            if !self.matched.is_empty() {
                batch.missing_group_field += self.set.correlations.observe(
                    event,
                    &self.matched,
                    &mut batch.observations,
                    &mut batch.alerts,
                );
            }
            for rule in &self.matched {
                let position = rule.0 as usize;
                if let (Some(label), Some(title)) =
                    (self.set.labels.get(position), self.set.titles.get(position))
                {
                    event.signatures.push(Arc::clone(label));
                    event.signature_titles.push(Arc::clone(title));
                }
                if let Some(count) = self.local_counts.get_mut(position) {
                    *count += 1;
                }
            }
        }
        for (position, count) in self.local_counts.iter_mut().enumerate() {
            if *count > 0 {
                if let Some(shared) = self.set.matches.get(position) {
                    shared.fetch_add(*count, Ordering::Relaxed);
                }
                *count = 0;
            }
        }
        (Arc::clone(&self.set), batch)
    }
}

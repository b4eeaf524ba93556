//! The one-rule-at-a-time evaluator: the test oracle and benchmark baseline for [`Matcher`].
//!
//! It shares the compiled program with [`Matcher`] but uses none of its machinery: no
//! automata, no candidate selection, fields looked up by a linear scan, every test evaluated on
//! the text.
//!
//! [`Matcher`]: crate::Matcher

use cairn_ingest::Event;

use crate::compile::{
    CompileOptions, CompiledRuleInfo, NeedleId, Program, SlotId, View, compile_program,
};
use crate::error::Rejection;
use crate::field::{SlotValue, Source, find_source, render_value, source_value};
use crate::matcher::RuleIndex;
use crate::rule::Rule;

/// Evaluates every rule directly against every event. Slow; for tests and baselines.
#[derive(Debug)]
pub struct NaiveMatcher {
    program: Program,
}

impl NaiveMatcher {
    /// Compiles like [`crate::Matcher::compile`] (same rejections, same [`RuleIndex`]es).
    pub fn compile(rules: &[Rule], options: &CompileOptions) -> (NaiveMatcher, Vec<Rejection>) {
        let (program, rejections) = compile_program(rules, options);
        (NaiveMatcher { program }, rejections)
    }

    /// The matching rules, ascending.
    pub fn match_event(&self, event: &Event) -> Vec<RuleIndex> {
        let sources: Vec<Source> = self
            .program
            .slots
            .iter()
            .map(|field| find_source(event, field))
            .collect();
        let rendered: Vec<String> = sources
            .iter()
            .map(|source| {
                let mut buffer = String::new();
                if let Source::Field(index) = source {
                    render_value(&event.fields[*index as usize].value, &mut buffer);
                }
                buffer
            })
            .collect();
        let view = NaiveView {
            event,
            sources: &sources,
            rendered: &rendered,
        };
        (0..self.program.rules.len())
            .filter(|index| self.program.eval(&self.program.rules[*index].expr, &view))
            .map(|index| RuleIndex(index as u32))
            .collect()
    }

    pub fn rule(&self, index: RuleIndex) -> &CompiledRuleInfo {
        &self.program.rules[index.0 as usize].info
    }

    pub fn len(&self) -> usize {
        self.program.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.rules.is_empty()
    }
}

struct NaiveView<'a> {
    event: &'a Event,
    sources: &'a [Source],
    rendered: &'a [String],
}

impl View for NaiveView<'_> {
    fn value(&self, slot: SlotId) -> Option<SlotValue<'_>> {
        let slot = slot as usize;
        source_value(self.event, self.sources[slot], &self.rendered[slot])
    }

    fn needle_flags(&self, _needle: NeedleId) -> Option<u8> {
        None
    }
}

//! Loading YAML from untrusted rule files without letting them exhaust memory or stack.
//!
//! `yaml-rust2` builds its tree iteratively, but dropping, emitting and walking a tree recurse, and
//! aliases are expanded by cloning (the "billion laughs" document). So every text is first
//! streamed through the event parser, which rejects it when it nests deeper than
//! [`MAX_YAML_DEPTH`], holds more than [`MAX_YAML_NODES`] nodes, or uses an alias; only then is the
//! tree built.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

use crate::error::Error;

/// Largest rule file read, in bytes. Real Sigma rules are a few KiB.
pub const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of YAML sequences and mappings accepted. Sigma rules nest 4 or 5 deep.
pub const MAX_YAML_DEPTH: usize = 32;
/// Most YAML nodes (scalars, sequences, mappings) accepted in one file.
pub const MAX_YAML_NODES: usize = 200_000;

/// Parses a (possibly multi-document) YAML text within the limits above.
pub(crate) fn load_documents(text: &str) -> Result<Vec<Yaml>, Error> {
    if text.len() > MAX_RULE_FILE_BYTES {
        return Err(Error::Yaml(format!(
            "file is {} bytes, more than the {MAX_RULE_FILE_BYTES} bytes accepted",
            text.len()
        )));
    }
    prescan(text)?;
    YamlLoader::load_from_str(text).map_err(|error| Error::Yaml(error.to_string()))
}

fn prescan(text: &str) -> Result<(), Error> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, marker) = parser
            .next_token()
            .map_err(|error| Error::Yaml(error.to_string()))?;
        match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                nodes += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(Error::Yaml(format!(
                        "nesting deeper than {MAX_YAML_DEPTH} levels at line {}",
                        marker.line()
                    )));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::Scalar(..) => nodes += 1,
            Event::Alias(_) => {
                return Err(Error::Yaml(format!(
                    "yaml aliases are not accepted in rules (line {})",
                    marker.line()
                )));
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
        }
        if nodes > MAX_YAML_NODES {
            return Err(Error::Yaml(format!(
                "more than {MAX_YAML_NODES} yaml nodes in one file"
            )));
        }
    }
}

/// Renders a document back to YAML text (for correlation rules kept aside).
pub(crate) fn emit(document: &Yaml) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    if emitter.dump(document).is_err() {
        out.clear();
    }
    out
}

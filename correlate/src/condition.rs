//! The Sigma condition language: `and`, `or`, `not`, parentheses, `1 of x*`, `all of them`.
//!
//! Precedence, loosest first: `or`, `and`, `not`, `x of`, parentheses. Keywords are matched
//! case-insensitively; search identifiers are letters, digits, `_`, `-`, `.` and (in `of`
//! patterns) `*`.

use std::fmt;

/// Deepest nesting of `not` and parentheses the parser accepts, whatever the compile limits say
/// (the parser recurses).
pub const MAX_CONDITION_NESTING: usize = 64;

/// A parsed condition expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A search identifier.
    Search(String),
    /// `1 of pattern` / `all of pattern` (`them` is the pattern `*` minus identifiers starting
    /// with `_`).
    Of {
        quantifier: Quantifier,
        target: OfTarget,
    },
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// How many of the matched search identifiers must be true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `1 of` / `any of`.
    Any,
    /// `all of`.
    All,
}

/// What an `of` applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfTarget {
    /// `them`: every search identifier not starting with `_`.
    Them,
    /// A pattern with `*` wildcards.
    Pattern(String),
}

impl Condition {
    /// Nesting depth (a lone identifier is 1).
    pub fn depth(&self) -> usize {
        match self {
            Condition::Search(_) | Condition::Of { .. } => 1,
            Condition::Not(inner) => 1 + inner.depth(),
            Condition::And(children) | Condition::Or(children) => {
                1 + children.iter().map(Condition::depth).max().unwrap_or(0)
            }
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Search(name) => f.write_str(name),
            Condition::Of { quantifier, target } => {
                let quantifier = match quantifier {
                    Quantifier::Any => "1",
                    Quantifier::All => "all",
                };
                match target {
                    OfTarget::Them => write!(f, "{quantifier} of them"),
                    OfTarget::Pattern(pattern) => write!(f, "{quantifier} of {pattern}"),
                }
            }
            Condition::Not(inner) => write!(f, "not {inner}"),
            Condition::And(children) | Condition::Or(children) => {
                let joiner = if matches!(self, Condition::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (index, child) in children.iter().enumerate() {
                    if index > 0 {
                        f.write_str(joiner)?;
                    }
                    write!(f, "{child}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(position, character)) = chars.peek() {
        match character {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '|' => {
                return Err(format!(
                    "aggregation expressions ('|' at offset {position}) are not supported; \
                     use a correlation rule"
                ));
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(format!(
                    "unexpected character {other:?} at offset {position}"
                ));
            }
        }
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?')
}

/// Parses one condition string. Errors are human-readable and name the offending token.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("empty condition".to_owned());
    }
    let mut parser = ConditionParser {
        tokens,
        position: 0,
        nesting: 0,
    };
    let condition = parser.parse_or()?;
    if let Some(token) = parser.tokens.get(parser.position) {
        return Err(format!(
            "unexpected {} after a complete expression",
            describe(token)
        ));
    }
    Ok(condition)
}

struct ConditionParser {
    tokens: Vec<Token>,
    position: usize,
    nesting: usize,
}

fn describe(token: &Token) -> String {
    match token {
        Token::Open => "'('".to_owned(),
        Token::Close => "')'".to_owned(),
        Token::Word(word) => format!("'{word}'"),
    }
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

impl ConditionParser {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.position), Some(Token::Word(word)) if is_keyword(word, keyword))
    }

    fn parse_or(&mut self) -> Result<Condition, String> {
        let mut children = vec![self.parse_and()?];
        while self.peek_keyword("or") {
            self.position += 1;
            children.push(self.parse_and()?);
        }
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Condition::Or(children)
        })
    }

    fn parse_and(&mut self) -> Result<Condition, String> {
        let mut children = vec![self.parse_not()?];
        while self.peek_keyword("and") {
            self.position += 1;
            children.push(self.parse_not()?);
        }
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Condition::And(children)
        })
    }

    fn enter(&mut self) -> Result<(), String> {
        self.nesting += 1;
        if self.nesting > MAX_CONDITION_NESTING {
            return Err(format!(
                "nested deeper than {MAX_CONDITION_NESTING} levels of 'not' and parentheses"
            ));
        }
        Ok(())
    }

    fn parse_not(&mut self) -> Result<Condition, String> {
        if self.peek_keyword("not") {
            self.position += 1;
            self.enter()?;
            let inner = self.parse_not()?;
            self.nesting -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Condition, String> {
        let Some(token) = self.tokens.get(self.position).cloned() else {
            return Err("unexpected end of condition".to_owned());
        };
        self.position += 1;
        match token {
            Token::Open => {
                self.enter()?;
                let inner = self.parse_or()?;
                self.nesting -= 1;
                match self.tokens.get(self.position) {
                    Some(Token::Close) => {
                        self.position += 1;
                        Ok(inner)
                    }
                    Some(other) => Err(format!("expected ')' but found {}", describe(other))),
                    None => Err("missing ')'".to_owned()),
                }
            }
            Token::Close => Err("unexpected ')'".to_owned()),
            Token::Word(word) => {
                if self.peek_keyword("of") {
                    let quantifier = if word == "1" || is_keyword(&word, "any") {
                        Quantifier::Any
                    } else if is_keyword(&word, "all") {
                        Quantifier::All
                    } else {
                        return Err(format!(
                            "'{word} of' is not supported; use '1 of' or 'all of'"
                        ));
                    };
                    self.position += 1;
                    let target = match self.tokens.get(self.position) {
                        Some(Token::Word(target)) => target.clone(),
                        Some(other) => {
                            return Err(format!(
                                "expected a pattern or 'them' after 'of', found {}",
                                describe(other)
                            ));
                        }
                        None => return Err("expected a pattern or 'them' after 'of'".to_owned()),
                    };
                    self.position += 1;
                    let target = if is_keyword(&target, "them") {
                        OfTarget::Them
                    } else {
                        OfTarget::Pattern(target)
                    };
                    return Ok(Condition::Of { quantifier, target });
                }
                for keyword in ["and", "or", "not", "of", "them"] {
                    if is_keyword(&word, keyword) {
                        return Err(format!("unexpected keyword '{word}'"));
                    }
                }
                if word.contains(['*', '?']) {
                    return Err(format!(
                        "wildcard identifier '{word}' outside '1 of' / 'all of'"
                    ));
                }
                Ok(Condition::Search(word))
            }
        }
    }
}

/// Whether a search identifier matches an `of` pattern (`*` = any run of characters).
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_not_binds_tighter_than_and_tighter_than_or() {
        let parsed = parse_condition("a or not b and c").unwrap();
        assert_eq!(parsed.to_string(), "(a or (not b and c))");
        let parsed = parse_condition("(a or b) and not 1 of filter_* or all of them").unwrap();
        assert_eq!(
            parsed.to_string(),
            "(((a or b) and not 1 of filter_*) or all of them)"
        );
        let parsed = parse_condition("any of sel* AND NOT x").unwrap();
        assert_eq!(parsed.to_string(), "(1 of sel* and not x)");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            parse_condition("a and")
                .unwrap_err()
                .contains("end of condition")
        );
        assert!(parse_condition("(a").unwrap_err().contains("missing ')'"));
        assert!(parse_condition("a b").unwrap_err().contains("'b'"));
        assert!(
            parse_condition("sel | count() > 5")
                .unwrap_err()
                .contains("aggregation")
        );
        assert!(parse_condition("2 of x*").unwrap_err().contains("'2 of'"));
        assert!(parse_condition("sel*").unwrap_err().contains("wildcard"));
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            parse_condition(&deep)
                .unwrap_err()
                .contains("nested deeper")
        );
        let nots = format!("{}a", "not ".repeat(100_000));
        assert!(
            parse_condition(&nots)
                .unwrap_err()
                .contains("nested deeper")
        );
    }

    #[test]
    fn of_patterns() {
        assert!(pattern_matches("selection_*", "selection_img"));
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(!pattern_matches("selection_*", "filter_x"));
        assert!(pattern_matches("sel", "sel"));
        assert!(!pattern_matches("sel", "sel1"));
    }
}

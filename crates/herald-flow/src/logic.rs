//! Condition logic: `and`, `or`, or Salesforce's custom logic such as `1 AND (2 OR NOT 3)`.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Logic {
    And,
    Or,
    Custom(LogicExpr),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LogicExpr {
    /// 0-based index of a condition.
    Condition(usize),
    Not(Box<LogicExpr>),
    And(Box<LogicExpr>, Box<LogicExpr>),
    Or(Box<LogicExpr>, Box<LogicExpr>),
}

impl Logic {
    /// Parses `logic` for `count` conditions; every condition must be used, and only those.
    pub fn parse(text: Option<&str>, count: usize) -> Result<Logic, String> {
        let Some(text) = text else { return Ok(Logic::And) };
        match text.trim().to_ascii_lowercase().as_str() {
            "and" => return Ok(Logic::And),
            "or" => return Ok(Logic::Or),
            _ => {}
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, position: 0, count, depth: 0 };
        let expr = parser.or()?;
        if parser.position != parser.tokens.len() {
            return Err(format!("unexpected `{}` in custom logic", parser.tokens[parser.position].text()));
        }
        let mut used = vec![false; count];
        mark_used(&expr, &mut used);
        if let Some(unused) = used.iter().position(|u| !u) {
            return Err(format!("custom logic does not use condition {}", unused + 1));
        }
        Ok(Logic::Custom(expr))
    }

    pub fn evaluate(&self, results: &[bool]) -> bool {
        match self {
            Logic::And => results.iter().all(|r| *r),
            Logic::Or => results.iter().any(|r| *r),
            Logic::Custom(expr) => expr.evaluate(results),
        }
    }
}

impl LogicExpr {
    fn evaluate(&self, results: &[bool]) -> bool {
        match self {
            LogicExpr::Condition(index) => results.get(*index).copied().unwrap_or(false),
            LogicExpr::Not(inner) => !inner.evaluate(results),
            LogicExpr::And(a, b) => a.evaluate(results) && b.evaluate(results),
            LogicExpr::Or(a, b) => a.evaluate(results) || b.evaluate(results),
        }
    }
}

fn mark_used(expr: &LogicExpr, used: &mut [bool]) {
    match expr {
        LogicExpr::Condition(index) => used[*index] = true,
        LogicExpr::Not(inner) => mark_used(inner, used),
        LogicExpr::And(a, b) | LogicExpr::Or(a, b) => {
            mark_used(a, used);
            mark_used(b, used);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Number(usize),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Number(n) => n.to_string(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            Token::Not => "NOT".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(Token::Close);
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            tokens.push(Token::Number(
                digits.parse().map_err(|_| format!("condition number {digits} is too large"))?,
            ));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_ascii_uppercase();
            tokens.push(match word.as_str() {
                "AND" => Token::And,
                "OR" => Token::Or,
                "NOT" => Token::Not,
                _ => {
                    return Err(format!(
                        "unknown word `{word}` in custom logic; use AND, OR, NOT, numbers and parentheses"
                    ));
                }
            });
        } else {
            return Err(format!("unexpected character `{c}` in custom logic"));
        }
    }
    if tokens.is_empty() {
        return Err("custom logic is empty".into());
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    count: usize,
    depth: usize,
}

const MAX_NESTING: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn or(&mut self) -> Result<LogicExpr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.position += 1;
            let right = self.and()?;
            left = LogicExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<LogicExpr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.position += 1;
            let right = self.unary()?;
            left = LogicExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<LogicExpr, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("custom logic nests deeper than {MAX_NESTING} levels"));
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<LogicExpr, String> {
        match self.peek().cloned() {
            Some(Token::Not) => {
                self.position += 1;
                Ok(LogicExpr::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.position += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("missing `)` in custom logic".into());
                }
                self.position += 1;
                Ok(inner)
            }
            Some(Token::Number(n)) => {
                self.position += 1;
                if n == 0 || n > self.count {
                    return Err(format!(
                        "custom logic names condition {n}, but there are {} conditions",
                        self.count
                    ));
                }
                Ok(LogicExpr::Condition(n - 1))
            }
            Some(other) => Err(format!("unexpected `{}` in custom logic", other.text())),
            None => Err("custom logic ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_custom_logic() {
        let logic = Logic::parse(Some("1 AND (2 OR NOT 3)"), 3).unwrap();
        assert!(logic.evaluate(&[true, false, false]));
        assert!(!logic.evaluate(&[true, false, true]));
        assert!(!logic.evaluate(&[false, true, true]));
        assert_eq!(Logic::parse(Some("OR"), 2).unwrap(), Logic::Or);
        assert_eq!(Logic::parse(None, 2).unwrap(), Logic::And);
    }

    #[test]
    fn refuses_bad_logic_with_reasons() {
        assert!(Logic::parse(Some("1 AND 4"), 3).unwrap_err().contains("condition 4"));
        assert!(Logic::parse(Some("1 AND 2"), 3).unwrap_err().contains("does not use condition 3"));
        assert!(Logic::parse(Some("1 AND (2"), 2).unwrap_err().contains("missing `)`"));
        assert!(Logic::parse(Some("1 XOR 2"), 2).unwrap_err().contains("XOR"));
        assert!(Logic::parse(Some(""), 0).is_err());
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Logic::parse(Some(&deep), 1).unwrap_err().contains("nests deeper"));
    }
}

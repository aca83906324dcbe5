//! Lexer and parser: source text -> untyped syntax tree with byte spans.

use herald_codes as codes;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::error::CompileError;

/// Maximum nesting of parentheses, calls and unary operators (guards the stack).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Num(Decimal),
    Str(Arc<str>),
    Ident,
    MergeOpen,
    RBrace,
    LParen,
    RParen,
    Comma,
    Amp,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Eof,
}

impl Tok {
    fn describe(&self) -> &'static str {
        match self {
            Tok::Num(_) => "a number",
            Tok::Str(_) => "a text literal",
            Tok::Ident => "a name",
            Tok::MergeOpen => "'{!'",
            Tok::RBrace => "'}'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::Comma => "','",
            Tok::Amp => "'&'",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Star => "'*'",
            Tok::Slash => "'/'",
            Tok::Caret => "'^'",
            Tok::Eq => "'='",
            Tok::Ne => "'<>'",
            Tok::Lt => "'<'",
            Tok::Gt => "'>'",
            Tok::Le => "'<='",
            Tok::Ge => "'>='",
            Tok::AndAnd => "'&&'",
            Tok::OrOr => "'||'",
            Tok::Bang => "'!'",
            Tok::Eof => "the end of the formula",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, pos: usize) -> Self {
        Lexer { src, pos }
    }

    fn skip_ws(&mut self) -> Result<(), CompileError> {
        let b = self.src.as_bytes();
        loop {
            while self.pos < b.len() && (b[self.pos] as char).is_ascii_whitespace() {
                self.pos += 1;
            }
            // Non-ASCII whitespace (e.g. a non-breaking space pasted from a document).
            if let Some(c) = self.src[self.pos..].chars().next()
                && !c.is_ascii()
                && c.is_whitespace()
            {
                self.pos += c.len_utf8();
                continue;
            }
            if self.src[self.pos..].starts_with("/*") {
                match self.src[self.pos + 2..].find("*/") {
                    Some(i) => {
                        self.pos += 2 + i + 2;
                        continue;
                    }
                    None => {
                        return Err(CompileError::new(codes::HX006, "Comment is not closed", self.pos, 2)
                            .with_hint("close it with */"));
                    }
                }
            }
            return Ok(());
        }
    }

    pub fn next_token(&mut self) -> Result<Token, CompileError> {
        self.skip_ws()?;
        let start = self.pos;
        let rest = &self.src[start..];
        let Some(c) = rest.chars().next() else {
            return Ok(Token { tok: Tok::Eof, start, end: start });
        };
        let two = |s: &str| rest.starts_with(s);
        let (tok, len) = if two("{!") {
            (Tok::MergeOpen, 2)
        } else if two("==") {
            (Tok::Eq, 2)
        } else if two("!=") || two("<>") {
            (Tok::Ne, 2)
        } else if two("<=") {
            (Tok::Le, 2)
        } else if two(">=") {
            (Tok::Ge, 2)
        } else if two("&&") {
            (Tok::AndAnd, 2)
        } else if two("||") {
            (Tok::OrOr, 2)
        } else {
            match c {
                '}' => (Tok::RBrace, 1),
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                ',' => (Tok::Comma, 1),
                '&' => (Tok::Amp, 1),
                '+' => (Tok::Plus, 1),
                '-' => (Tok::Minus, 1),
                '*' => (Tok::Star, 1),
                '/' => (Tok::Slash, 1),
                '^' => (Tok::Caret, 1),
                '=' => (Tok::Eq, 1),
                '<' => (Tok::Lt, 1),
                '>' => (Tok::Gt, 1),
                '!' => (Tok::Bang, 1),
                '"' | '\'' => return self.string(c),
                '0'..='9' | '.' => return self.number(),
                c if c.is_alphabetic() || c == '$' || c == '_' => return Ok(self.ident()),
                _ => {
                    return Err(CompileError::new(
                        codes::HX008,
                        format!("Unexpected character '{c}'"),
                        start,
                        c.len_utf8(),
                    ));
                }
            }
        };
        self.pos += len;
        Ok(Token { tok, start, end: self.pos })
    }

    fn ident(&mut self) -> Token {
        let start = self.pos;
        let is_part = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
        let mut end = start;
        let mut chars = self.src[start..].char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if is_part(c) {
                end = start + i + c.len_utf8();
            } else if c == '.' {
                // A dot continues the path only when a name part follows it.
                match chars.peek() {
                    Some(&(_, n)) if is_part(n) => end = start + i + 1,
                    _ => break,
                }
            } else {
                break;
            }
        }
        self.pos = end;
        Token { tok: Tok::Ident, start, end }
    }

    fn number(&mut self) -> Result<Token, CompileError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut end = start;
        let mut dots = 0;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
            if b[end] == b'.' {
                dots += 1;
            }
            end += 1;
        }
        let text = &self.src[start..end];
        self.pos = end;
        if dots > 1 || text == "." {
            return Err(CompileError::new(
                codes::HX009,
                format!("Invalid number {text}"),
                start,
                end - start,
            ));
        }
        let n = Decimal::from_str_exact(text).map_err(|_| {
            CompileError::new(codes::HX009, format!("Number {text} is out of range"), start, end - start)
                .with_hint("numbers have at most 28 significant digits")
        })?;
        Ok(Token { tok: Tok::Num(n), start, end })
    }

    fn string(&mut self, quote: char) -> Result<Token, CompileError> {
        let start = self.pos;
        let mut out = String::new();
        let mut it = self.src[start + 1..].char_indices();
        while let Some((i, c)) = it.next() {
            if c == quote {
                self.pos = start + 1 + i + 1;
                return Ok(Token { tok: Tok::Str(out.into()), start, end: self.pos });
            }
            if c == '\\' {
                let Some((j, e)) = it.next() else { break };
                let ch = match e {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'u' => {
                        let hex = self.src.get(start + 1 + j + 1..start + 1 + j + 5);
                        match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                            Some(cp) if char::from_u32(cp).is_some() => {
                                for _ in 0..4 {
                                    it.next();
                                }
                                char::from_u32(cp).unwrap_or('\u{fffd}')
                            }
                            _ => {
                                return Err(CompileError::new(
                                    codes::HX014,
                                    "Invalid \\u escape",
                                    start + 1 + i,
                                    2,
                                )
                                .with_hint("write \\u followed by 4 hex digits"));
                            }
                        }
                    }
                    other => {
                        return Err(CompileError::new(
                            codes::HX014,
                            format!("Invalid escape \\{other}"),
                            start + 1 + i,
                            1 + other.len_utf8(),
                        )
                        .with_hint("valid escapes: \\n \\r \\t \\b \\f \\\\ \\\" \\' \\uXXXX"));
                    }
                };
                out.push(ch);
                continue;
            }
            out.push(c);
        }
        Err(CompileError::new(codes::HX006, "Text literal is not closed", start, 1)
            .with_hint(format!("add the closing {quote}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Concat => "&",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnOp {
    Not,
    Neg,
    Plus,
}

#[derive(Clone, Debug)]
pub(crate) enum Ast {
    Num(Decimal),
    Str(Arc<str>),
    Bool(bool),
    Null,
    /// A reference path; the span covers the path (without `{!`/`}`).
    Ref(Vec<String>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    /// Function name (upper-cased), name span, arguments.
    Call(String, (usize, usize), Vec<Node>),
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub ast: Ast,
    pub start: usize,
    pub end: usize,
    /// Height of the tree below and including this node.
    pub depth: usize,
}

/// Maximum height of a syntax tree (long operator chains nest on their left side).
pub(crate) const MAX_TREE_DEPTH: usize = 160;

fn mk(ast: Ast, start: usize, end: usize) -> Node {
    let depth = 1 + match &ast {
        Ast::Unary(_, a) => a.depth,
        Ast::Binary(_, a, b) => a.depth.max(b.depth),
        Ast::Call(_, _, args) => args.iter().map(|a| a.depth).max().unwrap_or(0),
        _ => 0,
    };
    Node { ast, start, end, depth }
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    lex: Lexer<'a>,
    peeked: Option<Token>,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, pos: usize) -> Self {
        Parser { src, lex: Lexer::new(src, pos), peeked: None, depth: 0 }
    }

    fn peek(&mut self) -> Result<&Token, CompileError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn bump(&mut self) -> Result<Token, CompileError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next_token(),
        }
    }

    fn unexpected(&self, t: &Token, expected: &str) -> CompileError {
        let what = match &t.tok {
            Tok::Ident | Tok::Num(_) => format!("'{}'", &self.src[t.start..t.end]),
            other => other.describe().to_string(),
        };
        CompileError::new(
            codes::HX005,
            format!("Expected {expected}, found {what}"),
            t.start,
            (t.end - t.start).max(1),
        )
    }

    /// Parses a whole formula: one expression, then the end of the input.
    pub fn parse_formula(mut self) -> Result<Node, CompileError> {
        if self.peek()?.tok == Tok::Eof {
            let p = self.peek()?.start;
            return Err(CompileError::new(codes::HX011, "The formula is empty", p, 0)
                .with_hint("write an expression such as ISBLANK({!$Record.Phone})"));
        }
        let n = self.expr()?;
        if n.depth > MAX_TREE_DEPTH {
            return Err(too_deep(n.start, n.end));
        }
        let t = self.bump()?;
        if t.tok != Tok::Eof {
            let mut e = self.unexpected(&t, "an operator or the end of the formula");
            if t.tok == Tok::RParen {
                e.message = "Unmatched ')'".into();
            }
            return Err(e);
        }
        Ok(n)
    }

    /// Parses the inside of a merge field that starts at `open` (the position of `{!`), up to
    /// and including the closing `}`. Returns the node and the byte offset after `}`.
    pub fn parse_merge(mut self, open: usize) -> Result<(Node, usize), CompileError> {
        if matches!(self.peek()?.tok, Tok::Eof) {
            return Err(unclosed(open));
        }
        if self.peek()?.tok == Tok::RBrace {
            let t = self.bump()?;
            return Err(CompileError::new(codes::HX011, "Empty merge field {!}", open, t.end - open)
                .with_hint("write a reference such as {!$Record.FirstName}"));
        }
        let n = self.expr().map_err(|e| {
            if e.code == codes::HX005 && e.offset >= self.src.len() { unclosed(open) } else { e }
        })?;
        if n.depth > MAX_TREE_DEPTH {
            return Err(too_deep(n.start, n.end));
        }
        let t = self.bump()?;
        match t.tok {
            Tok::RBrace => Ok((n, t.end)),
            Tok::Eof => Err(unclosed(open)),
            _ => Err(self.unexpected(&t, "'}' to close the merge field")),
        }
    }

    fn expr(&mut self) -> Result<Node, CompileError> {
        self.binary(0)
    }

    fn peek_binop(&mut self) -> Result<Option<(BinOp, u8)>, CompileError> {
        let t = &self.peek()?.tok;
        Ok(match t {
            Tok::OrOr => Some((BinOp::Or, 1)),
            Tok::AndAnd => Some((BinOp::And, 2)),
            Tok::Eq => Some((BinOp::Eq, 3)),
            Tok::Ne => Some((BinOp::Ne, 3)),
            Tok::Lt => Some((BinOp::Lt, 4)),
            Tok::Gt => Some((BinOp::Gt, 4)),
            Tok::Le => Some((BinOp::Le, 4)),
            Tok::Ge => Some((BinOp::Ge, 4)),
            Tok::Amp => Some((BinOp::Concat, 5)),
            Tok::Plus => Some((BinOp::Add, 6)),
            Tok::Minus => Some((BinOp::Sub, 6)),
            Tok::Star => Some((BinOp::Mul, 7)),
            Tok::Slash => Some((BinOp::Div, 7)),
            _ => None,
        })
    }

    /// Precedence climbing, loosest first: || && (= <>) (< > <= >=) & (+ -) (* /), then unary
    /// and ^. All binary operators are left-associative.
    fn binary(&mut self, min_prec: u8) -> Result<Node, CompileError> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.peek_binop()? {
            if prec < min_prec {
                break;
            }
            self.bump()?;
            let rhs = self.binary(prec + 1)?;
            let (start, end) = (lhs.start, rhs.end);
            lhs = mk(Ast::Binary(op, Box::new(lhs), Box::new(rhs)), start, end);
            if lhs.depth > MAX_TREE_DEPTH {
                return Err(too_deep(start, end));
            }
        }
        Ok(lhs)
    }

    fn enter(&mut self, at: usize) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CompileError::new(
                codes::HX013,
                format!("The formula is nested too deeply (more than {MAX_DEPTH} levels)"),
                at,
                1,
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Node, CompileError> {
        let t = self.peek()?.clone();
        let op = match t.tok {
            Tok::Bang => UnOp::Not,
            Tok::Minus => UnOp::Neg,
            Tok::Plus => UnOp::Plus,
            _ => return self.power(),
        };
        self.bump()?;
        self.enter(t.start)?;
        let inner = self.unary()?;
        self.depth -= 1;
        let end = inner.end;
        Ok(mk(Ast::Unary(op, Box::new(inner)), t.start, end))
    }

    fn power(&mut self) -> Result<Node, CompileError> {
        let mut lhs = self.primary()?;
        while self.peek()?.tok == Tok::Caret {
            self.bump()?;
            let rhs = self.power_rhs()?;
            let (start, end) = (lhs.start, rhs.end);
            lhs = mk(Ast::Binary(BinOp::Pow, Box::new(lhs), Box::new(rhs)), start, end);
            if lhs.depth > MAX_TREE_DEPTH {
                return Err(too_deep(start, end));
            }
        }
        Ok(lhs)
    }

    fn power_rhs(&mut self) -> Result<Node, CompileError> {
        let t = self.peek()?.clone();
        let op = match t.tok {
            Tok::Minus => UnOp::Neg,
            Tok::Plus => UnOp::Plus,
            _ => return self.primary(),
        };
        self.bump()?;
        self.enter(t.start)?;
        let inner = self.power_rhs()?;
        self.depth -= 1;
        let end = inner.end;
        Ok(mk(Ast::Unary(op, Box::new(inner)), t.start, end))
    }

    fn primary(&mut self) -> Result<Node, CompileError> {
        let t = self.bump()?;
        let node = |ast| mk(ast, t.start, t.end);
        match &t.tok {
            Tok::Num(n) => Ok(node(Ast::Num(*n))),
            Tok::Str(s) => Ok(node(Ast::Str(s.clone()))),
            Tok::LParen => {
                self.enter(t.start)?;
                let inner = self.expr()?;
                self.depth -= 1;
                let close = self.bump()?;
                if close.tok != Tok::RParen {
                    return Err(self
                        .unexpected(&close, "')'")
                        .with_hint(format!("the '(' at byte {} is not closed", t.start)));
                }
                Ok(mk(inner.ast, t.start, close.end))
            }
            Tok::MergeOpen => {
                self.enter(t.start)?;
                let inner = self.expr()?;
                self.depth -= 1;
                let close = self.bump()?;
                match close.tok {
                    Tok::RBrace => {}
                    Tok::Eof => return Err(unclosed(t.start)),
                    _ => return Err(self.unexpected(&close, "'}' to close the merge field")),
                }
                Ok(mk(inner.ast, inner.start, inner.end))
            }
            Tok::Ident => {
                let text = &self.src[t.start..t.end];
                if self.peek()?.tok == Tok::LParen {
                    if text.contains('.') {
                        return Err(CompileError::new(
                            codes::HX005,
                            format!("'{text}' is not a function name"),
                            t.start,
                            t.end - t.start,
                        ));
                    }
                    let open = self.bump()?;
                    self.enter(open.start)?;
                    let mut args = Vec::new();
                    if self.peek()?.tok == Tok::RParen {
                        self.bump()?;
                    } else {
                        loop {
                            args.push(self.expr()?);
                            let sep = self.bump()?;
                            match sep.tok {
                                Tok::Comma => continue,
                                Tok::RParen => break,
                                _ => {
                                    return Err(self
                                        .unexpected(&sep, "',' or ')'")
                                        .with_hint(format!("the call to {text} is not closed")));
                                }
                            }
                        }
                    }
                    self.depth -= 1;
                    let end = self.prev_end();
                    return Ok(mk(
                        Ast::Call(text.to_ascii_uppercase(), (t.start, t.end), args),
                        t.start,
                        end,
                    ));
                }
                if !text.contains('.') {
                    if text.eq_ignore_ascii_case("true") {
                        return Ok(node(Ast::Bool(true)));
                    }
                    if text.eq_ignore_ascii_case("false") {
                        return Ok(node(Ast::Bool(false)));
                    }
                    if text.eq_ignore_ascii_case("null") {
                        return Ok(node(Ast::Null));
                    }
                }
                Ok(node(Ast::Ref(text.split('.').map(str::to_string).collect())))
            }
            _ => Err(self.unexpected(&t, "a value, a reference or a function call")),
        }
    }

    fn prev_end(&self) -> usize {
        self.lex.pos_before_peek()
    }
}

impl Lexer<'_> {
    fn pos_before_peek(&self) -> usize {
        self.pos
    }
}

fn too_deep(start: usize, end: usize) -> CompileError {
    CompileError::new(
        codes::HX013,
        format!("The formula is nested too deeply (more than {MAX_TREE_DEPTH} levels)"),
        start,
        end - start,
    )
    .with_hint("split it into several formulas")
}

pub(crate) fn unclosed(open: usize) -> CompileError {
    CompileError::new(codes::HX007, "Merge field '{!' is not closed", open, 2).with_hint("close it with '}'")
}

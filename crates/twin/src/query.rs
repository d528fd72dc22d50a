//! The fleet query language, one grammar for REST, CLI, UI and campaigns:
//!
//! ```text
//! expr    := and ("OR" and)*
//! and     := unary ("AND" unary)*
//! unary   := "NOT" unary | "(" expr ")" | "EXISTS" field | field op literal | field "LIKE" string
//! op      := "=" | "!=" | "<" | "<=" | ">" | ">="
//! literal := string | number | true | false | now | now-<n><s|m|h|d> | now+<n><unit>
//! ```
//! Fields are parameter paths or the meta fields `id, protocol, online, last_contact, oui,
//! product_class, serial, software_version, manufacturer`. Errors name the byte position.
//!
//! A query is bounded before anything walks it: at most [`MAX_NESTING`] parentheses and `NOT`s
//! deep and [`MAX_TERMS`] comparisons long. Evaluation, the index, `Drop` and the scatter all
//! recurse over the tree, so an unbounded one sent by anyone who can reach the API would
//! overflow a worker's stack and abort the node (issue 13).

use crate::model::Twin;
use crate::paths::PathDict;
use radar_core::{ParamType, Timestamp};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    /// `now` plus an offset in milliseconds, resolved at evaluation.
    RelativeTime(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Exists(String),
    Cmp {
        field: String,
        op: CmpOp,
        value: Literal,
    },
    Like {
        field: String,
        pattern: String,
    },
    /// The empty query matches everything.
    All,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("query error at position {position}: {message}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
    /// Set when the query was refused for its size, not its syntax.
    pub limit: Option<QueryLimit>,
}

/// The bounds a query is held to (issue 13): see [`MAX_NESTING`] and [`MAX_TERMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub nesting: usize,
    pub terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            nesting: MAX_NESTING,
            terms: MAX_TERMS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLimit {
    Nesting,
    Terms,
}

impl QueryLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLimit::Nesting => "query_nesting",
            QueryLimit::Terms => "query_terms",
        }
    }
}

/// The deepest nesting of `(` and `NOT` a query may have (the CWMP decoder's XML bound).
pub const MAX_NESTING: usize = 64;
/// The most comparisons (`=`, `LIKE`, `EXISTS`, ...) one query may hold. A chain of `AND`s or
/// `OR`s is as deep as it is long, so this also bounds the tree's depth.
pub const MAX_TERMS: usize = 1024;

pub const META_FIELDS: &[&str] = &[
    "id",
    "protocol",
    "mtp",
    "online",
    "last_contact",
    "oui",
    "product_class",
    "serial",
    "software_version",
    "manufacturer",
    "overdue",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(CmpOp),
    LParen,
    RParen,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            position,
            message: message.into(),
            limit: None,
        }
    }

    fn tokens(mut self) -> Result<Vec<(usize, Token)>, QueryError> {
        let mut out = Vec::new();
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() {
            let start = self.pos;
            let c = bytes[self.pos];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'(' => {
                    out.push((start, Token::LParen));
                    self.pos += 1;
                }
                b')' => {
                    out.push((start, Token::RParen));
                    self.pos += 1;
                }
                b'=' => {
                    out.push((start, Token::Op(CmpOp::Eq)));
                    self.pos += if bytes.get(self.pos + 1) == Some(&b'=') {
                        2
                    } else {
                        1
                    };
                }
                b'!' if bytes.get(self.pos + 1) == Some(&b'=') => {
                    out.push((start, Token::Op(CmpOp::Ne)));
                    self.pos += 2;
                }
                b'<' | b'>' => {
                    let eq = bytes.get(self.pos + 1) == Some(&b'=');
                    let op = match (c, eq) {
                        (b'<', true) => CmpOp::Le,
                        (b'<', false) => CmpOp::Lt,
                        (_, true) => CmpOp::Ge,
                        _ => CmpOp::Gt,
                    };
                    out.push((start, Token::Op(op)));
                    self.pos += if eq { 2 } else { 1 };
                }
                b'"' | b'\'' => {
                    let mut s = String::new();
                    self.pos += 1;
                    loop {
                        let Some(ch) = self.src[self.pos..].chars().next() else {
                            return Err(self.err(start, "unterminated string"));
                        };
                        self.pos += ch.len_utf8();
                        if ch as u32 == c as u32 {
                            break;
                        }
                        if ch == '\\' {
                            if let Some(next) = self.src[self.pos..].chars().next() {
                                self.pos += next.len_utf8();
                                s.push(next);
                                continue;
                            }
                        }
                        s.push(ch);
                    }
                    out.push((start, Token::Str(s)));
                }
                b'0'..=b'9' | b'-' => {
                    let end = self.src[self.pos + 1..]
                        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                        .map(|i| self.pos + 1 + i)
                        .unwrap_or(self.src.len());
                    let text = &self.src[self.pos..end];
                    let n: f64 = text
                        .parse()
                        .map_err(|_| self.err(start, format!("bad number {text:?}")))?;
                    out.push((start, Token::Num(n)));
                    self.pos = end;
                }
                _ if c.is_ascii_alphabetic() || c == b'_' => {
                    let end = self.src[self.pos..]
                        .find(|ch: char| {
                            !(ch.is_ascii_alphanumeric()
                                || matches!(ch, '.' | '_' | '-' | '+' | '{' | '}' | '*'))
                        })
                        .map(|i| self.pos + i)
                        .unwrap_or(self.src.len());
                    out.push((start, Token::Ident(self.src[self.pos..end].to_owned())));
                    self.pos = end;
                }
                _ => {
                    return Err(self.err(
                        start,
                        format!(
                            "unexpected character {:?}",
                            self.src[start..].chars().next().unwrap_or(' ')
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    index: usize,
    end: usize,
    /// `(` and `NOT` open around the current token.
    nesting: usize,
    terms: usize,
    limits: Limits,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.index).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.index)
            .map(|(p, _)| *p)
            .unwrap_or(self.end)
    }

    fn err(&self, message: impl Into<String>) -> QueryError {
        QueryError {
            position: self.position(),
            message: message.into(),
            limit: None,
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.index += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            self.index += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn nest(&mut self) -> Result<(), QueryError> {
        if self.nesting >= self.limits.nesting {
            let mut e = self.err(format!(
                "the query nests deeper than {} parentheses and NOTs",
                self.limits.nesting
            ));
            e.limit = Some(QueryLimit::Nesting);
            return Err(e);
        }
        self.nesting += 1;
        self.index += 1;
        Ok(())
    }

    fn term(&mut self) -> Result<(), QueryError> {
        if self.terms >= self.limits.terms {
            let mut e = self.err(format!(
                "the query has more than {} comparisons",
                self.limits.terms
            ));
            e.limit = Some(QueryLimit::Terms);
            return Err(e);
        }
        self.terms += 1;
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.keyword("NOT") {
            self.nest()?;
            let inner = self.unary()?;
            self.nesting -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.nest()?;
            let inner = self.or()?;
            if self.peek() != Some(&Token::RParen) {
                return Err(self.err("expected )"));
            }
            self.index += 1;
            self.nesting -= 1;
            return Ok(inner);
        }
        self.term()?;
        if self.keyword("EXISTS") {
            self.index += 1;
            return Ok(Expr::Exists(self.field()?));
        }
        let field = self.field()?;
        if self.keyword("LIKE") {
            self.index += 1;
            return match self.tokens.get(self.index).cloned() {
                Some((_, Token::Str(pattern))) => {
                    self.index += 1;
                    Ok(Expr::Like { field, pattern })
                }
                _ => Err(self.err("LIKE needs a quoted pattern")),
            };
        }
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.err("expected a comparison (=, !=, <, <=, >, >=, LIKE)")),
        };
        self.index += 1;
        let value = self.literal()?;
        Ok(Expr::Cmp { field, op, value })
    }

    fn field(&mut self) -> Result<String, QueryError> {
        match self.peek().cloned() {
            Some(Token::Ident(name))
                if !["AND", "OR", "NOT", "LIKE", "EXISTS"]
                    .iter()
                    .any(|k| name.eq_ignore_ascii_case(k)) =>
            {
                self.index += 1;
                Ok(name)
            }
            _ => Err(self.err("expected a field name")),
        }
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        let position = self.position();
        let literal = match self.peek().cloned() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Num(n)) => Literal::Num(n),
            Some(Token::Ident(word)) => match word.to_ascii_lowercase().as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                lower if lower.starts_with("now") => {
                    Literal::RelativeTime(parse_relative(&lower[3..]).ok_or(QueryError {
                        position,
                        limit: None,
                        message: format!("bad relative time {word:?}"),
                    })?)
                }
                // Bare words are strings, so `protocol = cwmp` reads naturally.
                _ => Literal::Str(word),
            },
            _ => return Err(self.err("expected a value")),
        };
        self.index += 1;
        Ok(literal)
    }
}

/// `""`, `-1h`, `+30m`, `-7d`, `-10s` → milliseconds offset from now.
fn parse_relative(rest: &str) -> Option<i64> {
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match rest.as_bytes()[0] {
        b'-' => (-1, &rest[1..]),
        b'+' => (1, &rest[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest.strip_suffix(unit)?.parse().ok()?;
    let ms: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)?.checked_mul(sign)
}

pub fn parse(src: &str) -> Result<Expr, QueryError> {
    parse_with(src, Limits::default())
}

/// [`parse`] with the operator's bounds (`[api] max_query_nesting`, `max_query_terms`).
pub fn parse_with(src: &str, limits: Limits) -> Result<Expr, QueryError> {
    let tokens = Lexer { src, pos: 0 }.tokens()?;
    if tokens.is_empty() {
        return Ok(Expr::All);
    }
    let mut parser = Parser {
        tokens,
        index: 0,
        end: src.len(),
        nesting: 0,
        terms: 0,
        limits,
    };
    let expr = parser.or()?;
    if parser.index < parser.tokens.len() {
        return Err(parser.err("unexpected input after the expression"));
    }
    Ok(expr)
}

/// What evaluation needs besides the twin.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    pub now: Timestamp,
    /// A device seen within this window counts as online.
    pub online_window: Duration,
    /// A CWMP device silent for twice its periodic inform interval plus this is overdue.
    pub overdue_grace: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    Bool(bool),
    Time(Timestamp),
    Typed(String, ParamType),
}

impl FieldValue {
    pub fn to_text(&self) -> String {
        match self {
            FieldValue::Str(s) | FieldValue::Typed(s, _) => s.clone(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Time(t) => t.to_rfc3339(),
        }
    }
}

pub fn is_online(twin: &Twin, ctx: &EvalContext) -> bool {
    // A USP agent is online while its MTP connection is up; a CWMP device within the window
    // (a dual-stack device by either).
    if twin.meta.connected {
        return true;
    }
    twin.meta.speaks("cwmp")
        && twin.meta.last_contact.0 > 0
        && ctx.now.duration_since(twin.meta.last_contact) <= ctx.online_window
}

/// A CWMP device's periodic inform interval, as it reported it (`PeriodicInformEnable` on and
/// `PeriodicInformInterval` above zero).
pub fn periodic_interval(twin: &Twin, dict: &PathDict) -> Option<Duration> {
    let root = if twin.meta.root.is_empty() {
        "Device."
    } else {
        twin.meta.root.as_str()
    };
    let enabled = twin
        .param_by_path(
            dict,
            &format!("{root}ManagementServer.PeriodicInformEnable"),
        )
        .is_none_or(|p| !matches!(p.value.as_str(), "false" | "0"));
    let seconds: u64 = twin
        .param_by_path(
            dict,
            &format!("{root}ManagementServer.PeriodicInformInterval"),
        )?
        .value
        .trim()
        .parse()
        .ok()?;
    (enabled && seconds > 0).then(|| Duration::from_secs(seconds))
}

/// A CWMP device that missed two periodic informs and the grace after them (TR-069 §3.2.1.1:
/// a CPE retries a failed session, but some firmware gives up after one failure).
pub fn is_overdue(twin: &Twin, dict: &PathDict, ctx: &EvalContext) -> bool {
    if twin.meta.protocol != "cwmp" || twin.meta.last_contact.0 == 0 {
        return false;
    }
    periodic_interval(twin, dict).is_some_and(|interval| {
        ctx.now.duration_since(twin.meta.last_contact) > interval * 2 + ctx.overdue_grace
    })
}

/// A meta field or a parameter of a twin.
pub fn field(twin: &Twin, dict: &PathDict, ctx: &EvalContext, name: &str) -> Option<FieldValue> {
    let meta = &twin.meta;
    Some(match name {
        "id" => FieldValue::Str(twin.key.to_string()),
        "protocol" => FieldValue::Str(meta.protocol.clone()),
        "mtp" => FieldValue::Str(meta.mtp.clone()),
        "online" => FieldValue::Bool(is_online(twin, ctx)),
        "last_contact" => FieldValue::Time(meta.last_contact),
        "oui" => FieldValue::Str(meta.oui.clone()),
        "product_class" => FieldValue::Str(meta.product_class.clone()),
        "serial" => FieldValue::Str(meta.serial.clone()),
        "software_version" => FieldValue::Str(meta.software_version.clone()),
        "manufacturer" => FieldValue::Str(meta.manufacturer.clone()),
        "overdue" => FieldValue::Bool(is_overdue(twin, dict, ctx)),
        path => {
            let p = twin.param_by_path(dict, path)?;
            FieldValue::Typed(p.value.to_string(), p.ty)
        }
    })
}

pub fn matches(expr: &Expr, twin: &Twin, dict: &PathDict, ctx: &EvalContext) -> bool {
    match expr {
        Expr::All => true,
        Expr::And(a, b) => matches(a, twin, dict, ctx) && matches(b, twin, dict, ctx),
        Expr::Or(a, b) => matches(a, twin, dict, ctx) || matches(b, twin, dict, ctx),
        Expr::Not(e) => !matches(e, twin, dict, ctx),
        Expr::Exists(f) => field(twin, dict, ctx, f).is_some(),
        Expr::Like { field: f, pattern } => field(twin, dict, ctx, f)
            .is_some_and(|v| glob(pattern.as_bytes(), v.to_text().as_bytes())),
        Expr::Cmp {
            field: f,
            op,
            value,
        } => match field(twin, dict, ctx, f) {
            None => false,
            Some(v) => compare(&v, value, ctx).is_some_and(|ord| match op {
                CmpOp::Eq => ord.is_eq(),
                CmpOp::Ne => ord.is_ne(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
            }),
        },
    }
}

fn compare(v: &FieldValue, lit: &Literal, ctx: &EvalContext) -> Option<std::cmp::Ordering> {
    let as_bool = |s: &str| ParamType::normalize_bool(s);
    match (v, lit) {
        (FieldValue::Time(t), Literal::RelativeTime(off)) => {
            Some(t.0.cmp(&((ctx.now.0 as i64).saturating_add(*off).max(0) as u64)))
        }
        (FieldValue::Time(t), Literal::Num(n)) => (t.0 as f64).partial_cmp(n),
        (FieldValue::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (FieldValue::Bool(b), Literal::Str(s)) => as_bool(s).map(|l| b.cmp(&l)),
        (FieldValue::Typed(s, _), Literal::Bool(l)) => as_bool(s).map(|b| b.cmp(l)),
        (FieldValue::Typed(s, _) | FieldValue::Str(s), Literal::Num(n)) => {
            s.trim().parse::<f64>().ok()?.partial_cmp(n)
        }
        (FieldValue::Typed(s, _) | FieldValue::Str(s), Literal::Str(l)) => {
            Some(s.as_str().cmp(l.as_str()))
        }
        (other, Literal::Str(l)) => Some(other.to_text().as_str().cmp(l.as_str())),
        _ => None,
    }
}

/// Glob with `*` (any run) and `?` (one character), iterative with backtracking: linear memory,
/// no recursion, safe on hostile patterns.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, Identity, ReportedParam, TwinCommand};
    use crate::model::ShardState;
    use radar_core::DeviceKey;

    fn state() -> ShardState {
        let mut s = ShardState::default();
        for (serial, class, sw, at) in [
            ("A", "HG8245", "1.0", 1_000u64),
            ("B", "HG8546", "2.0", 5_000_000),
            ("C", "Archer", "2.0", 5_000_000),
        ] {
            let cmd = TwinCommand::Inform {
                device: DeviceKey::from_oui_serial("00D09E", serial).unwrap(),
                at: Timestamp(at),
                identity: Identity {
                    oui: "00D09E".into(),
                    product_class: class.into(),
                    serial: serial.into(),
                    manufacturer: "M".into(),
                },
                events: vec![],
                params: vec![
                    ReportedParam {
                        path: "Device.DeviceInfo.SoftwareVersion".into(),
                        value: sw.into(),
                        ty: None,
                        writable: None,
                    },
                    ReportedParam {
                        path: "Device.DeviceInfo.UpTime".into(),
                        value: at.to_string(),
                        ty: Some(ParamType::UnsignedInt),
                        writable: None,
                    },
                ],
            };
            apply(&mut s, &cmd).unwrap();
        }
        s
    }

    fn run(q: &str) -> Vec<String> {
        let s = state();
        let ctx = EvalContext {
            now: Timestamp(5_000_100),
            online_window: Duration::from_secs(60),
            overdue_grace: Duration::ZERO,
        };
        let expr = parse(q).unwrap();
        s.twins
            .resident_twins()
            .filter(|t| matches(&expr, t, &s.dict, &ctx))
            .map(|t| t.meta.serial.clone())
            .collect()
    }

    #[test]
    fn comparisons_like_and_boolean_logic() {
        assert_eq!(run("product_class LIKE \"HG8*\""), ["A", "B"]);
        assert_eq!(
            run("software_version = '2.0' AND NOT product_class = Archer"),
            ["B"]
        );
        assert_eq!(
            run("Device.DeviceInfo.UpTime > 2000 OR serial = A"),
            ["A", "B", "C"]
        );
        assert_eq!(run("Device.DeviceInfo.UpTime <= 1000"), ["A"]);
        assert_eq!(
            run("(serial = A OR serial = B) AND software_version != 1.0"),
            ["B"]
        );
        assert_eq!(run("EXISTS Device.DeviceInfo.UpTime"), ["A", "B", "C"]);
        assert_eq!(run("EXISTS Device.Nope"), Vec::<String>::new());
        assert_eq!(run(""), ["A", "B", "C"]);
    }

    #[test]
    fn online_and_relative_time() {
        assert_eq!(run("online = true"), ["B", "C"]);
        assert_eq!(run("last_contact < now-1h"), ["A"]);
        assert_eq!(run("last_contact >= now-1h"), ["B", "C"]);
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(parse("serial = ").unwrap_err().position, 9);
        assert_eq!(parse("serial = 'x").unwrap_err().position, 9);
        let e = parse("serial == A AND (oui = B").unwrap_err();
        assert_eq!(e.position, 24);
        assert!(parse("serial ~ A")
            .unwrap_err()
            .message
            .contains("unexpected character"));
        assert!(parse("AND").is_err());
        assert!(parse("last_contact < now-1y").is_err());
        // Found by the query_parse fuzz target: overflow and a multi-byte unit.
        assert!(parse("G<now-88888878800000002s").is_err());
        assert!(parse("G<now-1é").is_err());
    }

    #[test]
    fn deep_and_long_queries_are_refused_not_recursed() {
        let deep = |n: usize| format!("{}serial = A{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(MAX_NESTING)).is_ok());
        let e = parse(&deep(MAX_NESTING + 1)).unwrap_err();
        assert_eq!(e.position, MAX_NESTING, "{e}");
        assert!(e.message.contains("nests deeper"), "{e}");
        // The issue's attack: thousands of parentheses, and NOTs, with no closing ones.
        assert!(parse(&"(".repeat(5000)).is_err());
        assert!(parse(&"NOT ".repeat(100_000)).is_err());
        // Nesting is counted open at a time, not in total.
        let siblings = vec![deep(MAX_NESTING); 8].join(" OR ");
        assert!(parse(&siblings).is_ok());

        let chain = |n: usize| vec!["serial = A"; n].join(" AND ");
        assert!(parse(&chain(MAX_TERMS)).is_ok());
        let e = parse(&chain(MAX_TERMS + 1)).unwrap_err();
        assert!(e.message.contains("comparisons"), "{e}");
        // The longest chain accepted is evaluated and dropped on half a tokio worker's stack,
        // in a debug build.
        let expr = parse(&chain(MAX_TERMS)).unwrap();
        let state = state();
        let twin = state
            .twins
            .resident_twins()
            .find(|t| t.meta.serial == "A")
            .unwrap()
            .clone();
        let dict = state.dict.clone();
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                let ctx = EvalContext {
                    now: Timestamp(0),
                    online_window: Duration::from_secs(60),
                    overdue_grace: Duration::from_secs(60),
                };
                assert!(matches(&expr, &twin, &dict, &ctx));
                drop(expr);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn an_operator_may_tighten_the_bounds() {
        let limits = Limits {
            nesting: 2,
            terms: 3,
        };
        assert!(parse_with("((a = 1))", limits).is_ok());
        let e = parse_with("(((a = 1)))", limits).unwrap_err();
        assert_eq!(e.limit, Some(QueryLimit::Nesting));
        assert!(e.message.contains("deeper than 2"), "{e}");
        let e = parse_with("a = 1 OR b = 2 OR c = 3 OR d = 4", limits).unwrap_err();
        assert_eq!(e.limit, Some(QueryLimit::Terms));
        assert_eq!(parse_with("a = ", limits).unwrap_err().limit, None);
    }

    #[test]
    fn glob_matches_without_recursion() {
        assert!(glob(b"HG8*", b"HG8245"));
        assert!(glob(b"*45", b"HG8245"));
        assert!(glob(b"H?8*5", b"HG8245"));
        assert!(!glob(b"HG9*", b"HG8245"));
        let pattern = "*a".repeat(50);
        assert!(!glob(pattern.as_bytes(), "a".repeat(40).as_bytes()));
    }
}

//! The text form of the segment language: a hand-written lexer and recursive-descent
//! parser, because the errors are for marketers — each names the line and column and
//! says what was expected in words, not grammar symbols.
//!
//! ```text
//! condition := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" or ")" | predicate
//! ```
//! The predicates are listed in `docs/segments.md`.

use serde_json::Value;

use crate::condition::*;

/// Where a definition went wrong, for a person: 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The longest definition accepted, in characters.
pub const MAX_LENGTH: usize = 10_000;
/// The deepest nesting of parentheses and `not`s accepted.
pub const MAX_DEPTH: usize = 32;

/// Parses the text form of a condition.
pub fn parse(text: &str) -> Result<Condition, ParseError> {
    if text.chars().count() > MAX_LENGTH {
        return Err(ParseError {
            line: 1,
            column: 1,
            message: format!("a definition may be at most {MAX_LENGTH} characters long"),
        });
    }
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let condition = parser.or()?;
    let next = parser.peek();
    if next.kind != Kind::End {
        let found = next.describe();
        return Err(parser.error_at(
            next,
            format!("expected \"and\", \"or\" or the end, but found {found}"),
        ));
    }
    Ok(condition)
}

/// Whether a trait key or property name can be written without quotes.
pub fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        && !matches!(key, "and" | "or" | "not" | "in" | "exists" | "contains")
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word(String),
    Str(String),
    Number(String),
    Symbol(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    line: usize,
    column: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.kind {
            Kind::Word(w) => format!("\"{w}\""),
            Kind::Str(s) => format!("the text \"{s}\""),
            Kind::Number(n) => format!("the number {n}"),
            Kind::Symbol(s) => format!("\"{s}\""),
            Kind::End => "the end of the definition".into(),
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.kind, Kind::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(&self.kind, Kind::Symbol(s) if *s == symbol)
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let error = |line, column, message: String| ParseError {
        line,
        column,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let (start_line, start_column) = (line, column);
        let advance = |n: usize, i: &mut usize, column: &mut usize| {
            *i += n;
            *column += n;
        };
        if c == '\n' {
            i += 1;
            line += 1;
            column = 1;
            continue;
        }
        if c.is_whitespace() {
            advance(1, &mut i, &mut column);
            continue;
        }
        let kind = if c == '"' || c == '“' || c == '\'' {
            let close = match c {
                '“' => '”',
                other => other,
            };
            let mut s = String::new();
            advance(1, &mut i, &mut column);
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(error(
                            start_line,
                            start_column,
                            "this text is not closed: add the closing quote".into(),
                        ));
                    }
                    Some('\\') => {
                        let escaped = match chars.get(i + 1) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some(&other @ ('"' | '\\' | '\'' | '”')) => other,
                            _ => {
                                return Err(error(
                                    line,
                                    column,
                                    "a backslash in text must be followed by \", \\, n or t".into(),
                                ));
                            }
                        };
                        s.push(escaped);
                        advance(2, &mut i, &mut column);
                    }
                    Some(&ch) if ch == close => {
                        advance(1, &mut i, &mut column);
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        advance(1, &mut i, &mut column);
                    }
                }
            }
            Kind::Str(s)
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut s = String::from(c);
            advance(1, &mut i, &mut column);
            while let Some(&d) = chars.get(i) {
                if d.is_ascii_digit()
                    || (d == '.' && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
                {
                    s.push(d);
                    advance(1, &mut i, &mut column);
                } else {
                    break;
                }
            }
            Kind::Number(s)
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let mut s = String::new();
            while let Some(&d) = chars.get(i) {
                if d.is_alphanumeric() && !(d.is_ascii_digit() && s.is_empty())
                    || d == '_'
                    || d == '$'
                {
                    s.push(d);
                    advance(1, &mut i, &mut column);
                } else {
                    break;
                }
            }
            Kind::Word(s)
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = match two.as_str() {
                ">=" => Some(">="),
                "<=" => Some("<="),
                "!=" => Some("!="),
                "<>" => Some("!="),
                "==" => Some("="),
                _ => None,
            };
            if let Some(symbol) = symbol {
                advance(2, &mut i, &mut column);
                Kind::Symbol(symbol)
            } else {
                let symbol = match c {
                    '(' | '（' => "(",
                    ')' | '）' => ")",
                    ',' | '，' => ",",
                    '.' => ".",
                    '=' => "=",
                    '>' => ">",
                    '<' => "<",
                    _ => {
                        return Err(error(line, column, format!("\"{c}\" is not allowed here")));
                    }
                };
                advance(1, &mut i, &mut column);
                Kind::Symbol(symbol)
            }
        };
        tokens.push(Token {
            kind,
            line: start_line,
            column: start_column,
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        line,
        column,
    });
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

type Parsed<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> Token {
        self.tokens[self.at].clone()
    }

    fn error_at(&self, token: Token, message: String) -> ParseError {
        ParseError {
            line: token.line,
            column: token.column,
            message,
        }
    }

    fn expected<T>(&self, what: &str) -> Parsed<T> {
        let token = self.peek();
        Err(self.error_at(
            token.clone(),
            format!("expected {what}, but found {}", token.describe()),
        ))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek().is_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if self.peek().is_symbol(symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, word: &str) -> Parsed<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.expected(&format!("\"{word}\""))
        }
    }

    fn symbol(&mut self, symbol: &str) -> Parsed<()> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            self.expected(&format!("\"{symbol}\""))
        }
    }

    fn or(&mut self) -> Parsed<Condition> {
        let mut parts = vec![self.and()?];
        while self.eat_word("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn and(&mut self) -> Parsed<Condition> {
        let mut parts = vec![self.unary()?];
        while self.eat_word("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn deeper(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let token = self.peek();
            return Err(self.error_at(
                token,
                format!("conditions may be nested at most {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Parsed<Condition> {
        if self.eat_word("not") {
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        let open = self.peek();
        if self.eat_symbol("(") {
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            if !self.eat_symbol(")") {
                let token = self.peek();
                return Err(self.error_at(
                    token.clone(),
                    format!(
                        "expected \")\" to close the \"(\" at line {}, column {}, but found {}",
                        open.line,
                        open.column,
                        token.describe()
                    ),
                ));
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Parsed<Condition> {
        let token = self.peek();
        let Kind::Word(word) = &token.kind else {
            return self.expected("a condition such as tag(\"VIP\") or trait.city = \"上海\"");
        };
        let word = word.to_ascii_lowercase();
        self.at += 1;
        match word.as_str() {
            "tag" => {
                self.symbol("(")?;
                let name = self.string("a tag name in quotes")?;
                self.symbol(")")?;
                Ok(Condition::Tag(name))
            }
            "trait" => self.trait_test(),
            "performed" => self.performed(),
            "first_time" | "last_time" => {
                self.symbol("(")?;
                let event = self.string("an event name in quotes")?;
                self.symbol(")")?;
                let test = self.time_test()?;
                Ok(Condition::EventTime(EventTime {
                    event,
                    which: if word == "first_time" {
                        Which::First
                    } else {
                        Which::Last
                    },
                    test,
                }))
            }
            "orders" => self.orders(),
            "rfm" => self.rfm(),
            "lifecycle" => {
                let names = self.one_or_list("a lifecycle stage")?;
                let stages = names
                    .into_iter()
                    .map(|(token, name)| {
                        LifecycleStage::parse(&name).ok_or_else(|| {
                            self.error_at(
                                token,
                                format!(
                                    "\"{name}\" is not a lifecycle stage; use one of {}",
                                    list(LifecycleStage::ALL.iter().map(|s| s.code()))
                                ),
                            )
                        })
                    })
                    .collect::<Parsed<_>>()?;
                Ok(Condition::Lifecycle(stages))
            }
            "unit" => {
                self.symbol("=")?;
                Ok(Condition::Unit(self.id("a unit id")?))
            }
            "owner" => {
                if self.eat_word("exists") {
                    return Ok(Condition::HasOwner);
                }
                self.symbol("=")?;
                Ok(Condition::Owner(self.id("a staff id")?))
            }
            "source" => {
                self.symbol("(")?;
                let name = self.string("a source name in quotes")?;
                self.symbol(")")?;
                Ok(Condition::Source(name))
            }
            "channel_code" => {
                self.symbol("(")?;
                let code = self.string("a channel code in quotes, such as \"618-poster\"")?;
                self.symbol(")")?;
                Ok(Condition::ChannelCode(code))
            }
            "consent" => {
                self.symbol("(")?;
                let channel = self.string("a channel in quotes, such as \"sms\"")?;
                self.symbol(")")?;
                Ok(Condition::Consent(channel))
            }
            "segment" => {
                self.symbol("(")?;
                let id = self.id("a segment id")?;
                self.symbol(")")?;
                Ok(Condition::Segment(id))
            }
            "bucket" => {
                let op = self.cmp()?;
                let value = self.whole("a bucket number from 0 to 99")?;
                Ok(Condition::Bucket(BucketTest { op, value }))
            }
            _ => Err(self.error_at(
                token.clone(),
                format!(
                    "unknown condition \"{word}\"; conditions start with one of {}",
                    list(
                        [
                            "tag",
                            "trait",
                            "performed",
                            "first_time",
                            "last_time",
                            "orders",
                            "rfm",
                            "lifecycle",
                            "unit",
                            "owner",
                            "consent",
                            "segment",
                            "bucket",
                            "not"
                        ]
                        .into_iter()
                    )
                ),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Parsed<String> {
        match self.peek().kind {
            Kind::Str(s) => {
                self.at += 1;
                Ok(s)
            }
            _ => self.expected(what),
        }
    }

    fn number(&mut self, what: &str) -> Parsed<f64> {
        match self.peek().kind {
            Kind::Number(n) => {
                self.at += 1;
                Ok(n.parse().expect("the lexer reads only digits"))
            }
            _ => self.expected(what),
        }
    }

    fn whole(&mut self, what: &str) -> Parsed<u32> {
        let token = self.peek();
        let n = self.number(what)?;
        if n.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&n) {
            return Err(self.error_at(token, format!("expected {what}: a whole number")));
        }
        Ok(n as u32)
    }

    fn id(&mut self, what: &str) -> Parsed<i64> {
        let token = self.peek();
        let n = self.number(what)?;
        if n.fract() != 0.0 || !(1.0..=1e15).contains(&n) {
            return Err(self.error_at(token, format!("expected {what}: a whole number")));
        }
        Ok(n as i64)
    }

    fn cmp(&mut self) -> Parsed<Cmp> {
        let token = self.peek();
        if let Kind::Symbol(s) = token.kind
            && let Some(op) = Cmp::from_symbol(s)
        {
            self.at += 1;
            return Ok(op);
        }
        self.expected("a comparison (=, !=, >, >=, <, <=)")
    }

    fn value(&mut self) -> Parsed<Value> {
        let token = self.peek();
        match &token.kind {
            Kind::Str(s) => {
                self.at += 1;
                Ok(Value::String(s.clone()))
            }
            Kind::Number(n) => {
                self.at += 1;
                Ok(serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.clone())))
            }
            Kind::Word(w) if w == "true" || w == "false" => {
                self.at += 1;
                Ok(Value::Bool(w == "true"))
            }
            _ => self.expected("a value: text in quotes, a number, true or false"),
        }
    }

    fn key(&mut self, what: &str) -> Parsed<String> {
        match self.peek().kind {
            Kind::Word(w) | Kind::Str(w) => {
                self.at += 1;
                Ok(w)
            }
            _ => self.expected(what),
        }
    }

    /// `within last 30d` or `before 30d ago`.
    fn time_test(&mut self) -> Parsed<TimeTest> {
        if self.eat_word("within") {
            self.word("last")?;
            Ok(TimeTest::Within(self.days()?))
        } else if self.eat_word("before") {
            let days = self.days()?;
            self.word("ago")?;
            Ok(TimeTest::Before(days))
        } else {
            self.expected("\"within last 30d\" or \"before 30d ago\"")
        }
    }

    /// `30d`
    fn days(&mut self) -> Parsed<u32> {
        let token = self.peek();
        let n = self.whole("a number of days such as 30d")?;
        if !self.eat_word("d") {
            return self.expected("\"d\" after the number of days (30d)");
        }
        if n == 0 || n > MAX_WINDOW_DAYS {
            return Err(self.error_at(
                token,
                format!("a window must be 1 to {MAX_WINDOW_DAYS} days"),
            ));
        }
        Ok(n)
    }

    /// `= "x"` or `in ("x", "y")`, giving each name with its token.
    fn one_or_list(&mut self, what: &str) -> Parsed<Vec<(Token, String)>> {
        if self.eat_symbol("=") {
            let token = self.peek();
            return Ok(vec![(token, self.string(&format!("{what} in quotes"))?)]);
        }
        if self.eat_word("in") {
            self.symbol("(")?;
            let mut names = Vec::new();
            loop {
                let token = self.peek();
                names.push((token, self.string(&format!("{what} in quotes"))?));
                if !self.eat_symbol(",") {
                    break;
                }
            }
            self.symbol(")")?;
            return Ok(names);
        }
        self.expected("\"=\" or \"in\"")
    }

    fn trait_test(&mut self) -> Parsed<Condition> {
        self.symbol(".")?;
        let key = self.key("a trait name after \"trait.\"")?;
        let test = if self.eat_word("exists") {
            TraitOp::Exists
        } else if self.eat_word("contains") {
            TraitOp::Contains(self.string("the text to look for, in quotes")?)
        } else if self.eat_word("in") {
            self.symbol("(")?;
            let mut values = vec![self.value()?];
            while self.eat_symbol(",") {
                values.push(self.value()?);
            }
            self.symbol(")")?;
            TraitOp::In(values)
        } else if self.peek().is_word("within") || self.peek().is_word("before") {
            TraitOp::Time(self.time_test()?)
        } else if let Kind::Symbol(_) = self.peek().kind {
            let op = self.cmp()?;
            TraitOp::Compare {
                op,
                value: self.value()?,
            }
        } else {
            return self.expected(
                "a test of the trait: a comparison, in (…), exists, contains, within or before",
            );
        };
        Ok(Condition::Trait(TraitTest { key, test }))
    }

    fn performed(&mut self) -> Parsed<Condition> {
        self.symbol("(")?;
        let event = self.string("an event name in quotes, such as \"Order Completed\"")?;
        let mut within_days = None;
        let mut filters = Vec::new();
        while self.eat_symbol(",") {
            if self.eat_word("last") {
                within_days = Some(self.days()?);
            } else if self.eat_word("where") {
                loop {
                    let property = self.key("an event property name")?;
                    let op = self.cmp()?;
                    let value = self.value()?;
                    filters.push(PropertyFilter {
                        property,
                        op,
                        value,
                    });
                    if !self.eat_word("and") {
                        break;
                    }
                }
            } else {
                return self.expected("\"last 30d\" or \"where property = value\"");
            }
        }
        self.symbol(")")?;
        let (op, count) = if let Kind::Symbol(s) = self.peek().kind
            && Cmp::from_symbol(s).is_some()
        {
            let op = self.cmp()?;
            (op, self.whole("a number of times")?)
        } else {
            (Cmp::Ge, 1)
        };
        Ok(Condition::Performed(Performed {
            event,
            within_days,
            filters,
            op,
            count,
        }))
    }

    fn orders(&mut self) -> Parsed<Condition> {
        self.symbol(".")?;
        let token = self.peek();
        let word = self.key("count, sum, avg or last after \"orders.\"")?;
        let measure = match word.as_str() {
            "count" => OrderMeasure::Count,
            "sum" => OrderMeasure::Sum,
            "avg" => OrderMeasure::Avg,
            "last" => return Ok(Condition::LastOrder(self.time_test()?)),
            other => {
                return Err(self.error_at(
                    token,
                    format!("\"orders.{other}\" is not known; use orders.count, orders.sum, orders.avg or orders.last"),
                ));
            }
        };
        self.symbol("(")?;
        let (mut within_days, mut unit, mut channel) = (None, None, None);
        if !self.peek().is_symbol(")") {
            loop {
                if self.eat_word("last") {
                    within_days = Some(self.days()?);
                } else if self.eat_word("unit") {
                    self.symbol("=")?;
                    unit = Some(self.id("a unit id")?);
                } else if self.eat_word("channel") {
                    self.symbol("=")?;
                    channel = Some(self.string("a sales channel in quotes, such as \"wecom\"")?);
                } else {
                    return self
                        .expected("\"last 90d\", \"unit = 3\" or \"channel = \\\"wecom\\\"\"");
                }
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.symbol(")")?;
        let op = self.cmp()?;
        let token = self.peek();
        let value = self.number(match measure {
            OrderMeasure::Count => "a number of orders",
            _ => "an amount (in the tenant currency)",
        })?;
        let valid = match measure {
            OrderMeasure::Count => value.fract() == 0.0,
            _ => (value * 100.0 - (value * 100.0).round()).abs() < 1e-6,
        };
        if !valid {
            return Err(self.error_at(
                token,
                match measure {
                    OrderMeasure::Count => "a number of orders must be whole".into(),
                    _ => "an amount may have at most two decimals".into(),
                },
            ));
        }
        Ok(Condition::Orders(OrderTest {
            measure,
            within_days,
            unit,
            channel,
            op,
            value,
        }))
    }

    fn rfm(&mut self) -> Parsed<Condition> {
        self.symbol(".")?;
        let token = self.peek();
        let word = self.key("class, r, f or m after \"rfm.\"")?;
        let dimension = match word.as_str() {
            "class" => {
                let names = self.one_or_list("an RFM class")?;
                let classes = names
                    .into_iter()
                    .map(|(token, name)| {
                        RfmClass::parse(&name).ok_or_else(|| {
                            self.error_at(
                                token,
                                format!(
                                    "\"{name}\" is not an RFM class; use one of {}",
                                    list(RfmClass::ALL.iter().map(|c| c.chinese()))
                                ),
                            )
                        })
                    })
                    .collect::<Parsed<_>>()?;
                return Ok(Condition::RfmClass(classes));
            }
            "r" => RfmDimension::R,
            "f" => RfmDimension::F,
            "m" => RfmDimension::M,
            other => {
                return Err(self.error_at(
                    token,
                    format!("\"rfm.{other}\" is not known; use rfm.class, rfm.r, rfm.f or rfm.m"),
                ));
            }
        };
        let op = self.cmp()?;
        let token = self.peek();
        let value = self.whole("a score from 1 to 5")?;
        if !(1..=5).contains(&value) {
            return Err(self.error_at(token, "an RFM score is from 1 to 5".into()));
        }
        Ok(Condition::RfmScore(RfmScoreTest {
            dimension,
            op,
            value: value as u8,
        }))
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Condition {
        let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = parsed.to_string();
        assert_eq!(parse(&printed).unwrap(), parsed, "reprinted as {printed}");
        let json = serde_json::to_value(&parsed).unwrap();
        let back: Condition = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, parsed, "through JSON {json}");
        parsed
    }

    #[test]
    fn the_issue_example_parses_and_round_trips() {
        let c = round_trip(
            r#"tag("高净值") and orders.count(last 90d) >= 2 and not performed("Complaint Filed", last 30d) and trait.city in ("上海", "杭州")"#,
        );
        let Condition::And(parts) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], Condition::Tag("高净值".into()));
        assert_eq!(
            c.to_string(),
            r#"tag("高净值") and orders.count(last 90d) >= 2 and not performed("Complaint Filed", last 30d) and trait.city in ("上海", "杭州")"#
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_are_kept_where_needed() {
        let c = round_trip(r#"tag("a") or tag("b") and tag("c")"#);
        assert!(matches!(&c, Condition::Or(p) if matches!(p[1], Condition::And(_))));
        let c = round_trip(r#"(tag("a") or tag("b")) and tag("c")"#);
        assert_eq!(c.to_string(), r#"(tag("a") or tag("b")) and tag("c")"#);
        let c = round_trip(r#"not (tag("a") and tag("b"))"#);
        assert_eq!(c.to_string(), r#"not (tag("a") and tag("b"))"#);
    }

    #[test]
    fn every_predicate_round_trips() {
        for text in [
            r#"trait.age >= 30"#,
            r#"trait.vip = true"#,
            r#"trait.city != "北京""#,
            r#"trait.email exists"#,
            r#"trait.name contains "李""#,
            r#"trait.member_since within last 30d"#,
            r#"trait.member_since before 365d ago"#,
            r#"trait."favourite colour" = "red""#,
            r#"performed("Product Viewed", last 7d, where category = "美妆" and price >= 100) >= 3"#,
            r#"performed("Signed Up")"#,
            r#"performed("Article Read") = 0"#,
            r#"first_time("Signed Up") within last 30d"#,
            r#"last_time("App Opened") before 60d ago"#,
            r#"orders.count() >= 1"#,
            r#"orders.sum(last 365d, unit = 3, channel = "wecom") >= 1999.5"#,
            r#"orders.avg(last 90d) < 100"#,
            r#"orders.last within last 30d"#,
            r#"rfm.class = "important_value""#,
            r#"rfm.class in ("important_value", "important_retention")"#,
            r#"rfm.r >= 4"#,
            r#"lifecycle in ("retained", "revenue")"#,
            r#"unit = 3"#,
            r#"source("露米茶饮小程序")"#,
            r#"channel_code("618-poster")"#,
            r#"owner = 12"#,
            r#"owner exists"#,
            r#"consent("sms")"#,
            r#"segment(7)"#,
            r#"bucket < 10"#,
        ] {
            let c = round_trip(text);
            assert_eq!(c.to_string(), text);
        }
    }

    #[test]
    fn chinese_names_punctuation_and_case_are_accepted() {
        let c = round_trip("rfm.class = “重要价值” AND lifecycle = \"留存\"");
        assert_eq!(
            c.to_string(),
            r#"rfm.class = "important_value" and lifecycle = "retained""#
        );
        round_trip("tag（\"VIP\"）");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let c = parse(r#"trait.city in ("上海") and performed("X", last 30d) >= 2"#).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"and": [
                {"trait": {"key": "city", "op": "in", "value": ["上海"]}},
                {"performed": {"event": "X", "within_days": 30, "op": ">=", "count": 2}}
            ]})
        );
        let c: Condition = serde_json::from_value(serde_json::json!(
            {"event_time": {"event": "A", "which": "last", "within_days": 7}}
        ))
        .unwrap();
        assert_eq!(c.to_string(), r#"last_time("A") within last 7d"#);
        let c: Condition = serde_json::from_value(serde_json::json!({"has_owner": null})).unwrap();
        assert_eq!(c, Condition::HasOwner);
    }

    fn error(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    #[test]
    fn errors_point_at_the_line_and_column_in_words() {
        let e = error("tag(\"a\") and\n  trait.city = ");
        assert_eq!((e.line, e.column), (2, 16));
        assert!(e.message.contains("expected a value"), "{e}");

        let e = error(r#"tagg("a")"#);
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("unknown condition \"tagg\""), "{e}");

        let e = error(r#"(tag("a") or tag("b")"#);
        assert!(
            e.message.contains("to close the \"(\" at line 1, column 1"),
            "{e}"
        );

        let e = error(r#"tag("a"#);
        assert!(e.message.contains("not closed"), "{e}");

        let e = error(r#"rfm.class = "超级""#);
        assert_eq!(e.column, 13);
        assert!(e.message.contains("重要价值"), "{e}");

        let e = error(r#"orders.count(last 0d) > 1"#);
        assert!(e.message.contains("1 to 3650 days"), "{e}");

        let e = error(r#"orders.sum() > 1.234"#);
        assert!(e.message.contains("two decimals"), "{e}");

        let e = error(r#"tag("a") tag("b")"#);
        assert!(e.message.contains("expected \"and\", \"or\""), "{e}");

        let e = error("");
        assert!(e.message.contains("expected a condition"), "{e}");

        let e = error(r#"trait.x = "a" # comment"#);
        assert!(e.message.contains("\"#\" is not allowed"), "{e}");

        let deep = "not ".repeat(40) + "tag(\"a\")";
        assert!(error(&deep).message.contains("nested at most"));
    }
}

//! Message templates: a text with personalisation (`{{ customer.name }}`), rendered by
//! minijinja with no loader, none of its builtins but five filters, and a fuel limit.
//! A body may say only a small part of Jinja (values, filters, `if` over values
//! compared with text: [`check_syntax`]), so it can neither reach outside its values,
//! loop, print template syntax, nor make a text bigger than what it says.
//!
//! Why the rules below. A mass send must never reach a customer as `你好 {{…}}` or as
//! `你好 ，`. So a template may name only the variables siyu knows ([`Variable`]), each
//! one needs a fallback when it is saved, and a value that is missing or blank renders
//! its fallback. What a value carries is text, never template syntax (its braces are
//! broken up). A template is rendered once with its fallbacks when it is saved, so one
//! that cannot render is refused then, not at send time.
//!
//! Per customer or per member: on WeCom one `add_msg_template` call carries one text
//! for up to 10,000 customers, so a mass send renders once per member task, where the
//! customer's values are not known and render their fallbacks ([`Variable::per_customer`]);
//! channels that send one message per customer render each one.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::{DomainError, check_name};
use crate::ids::MessageTemplateId;

/// The longest text WeCom sends (`text.content`, in bytes): a template's body and what
/// it renders stay within it.
pub const TEXT_MAX_BYTES: usize = 4_000;
/// The longest fallback, in characters.
pub const FALLBACK_MAX_CHARS: usize = 100;
/// Work a rendering may do (minijinja's fuel: about one unit per instruction); a loop
/// that would exceed it fails instead of holding a worker.
const FUEL: u64 = 50_000;

/// A variable a template may name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variable {
    /// `customer.name`: the customer's name.
    CustomerName,
    /// `customer.traits.<key>`: one of the customer's traits.
    CustomerTrait(String),
    /// `member.name`: the member (the customer's owner, or the task's member) who sends.
    MemberName,
    /// `code.name`: the channel code that first brought the customer.
    CodeName,
    /// `brand.name`: the tenant's name.
    BrandName,
}

impl Variable {
    /// Parses a dotted path as the template names it.
    pub fn parse(path: &str) -> Option<Self> {
        match path {
            "customer.name" => Some(Self::CustomerName),
            "member.name" => Some(Self::MemberName),
            "code.name" => Some(Self::CodeName),
            "brand.name" => Some(Self::BrandName),
            _ => {
                let key = path.strip_prefix("customer.traits.")?;
                let ok = !key.is_empty()
                    && key.len() <= 64
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                ok.then(|| Self::CustomerTrait(key.to_owned()))
            }
        }
    }

    /// The dotted path.
    pub fn path(&self) -> String {
        match self {
            Self::CustomerName => "customer.name".into(),
            Self::CustomerTrait(key) => format!("customer.traits.{key}"),
            Self::MemberName => "member.name".into(),
            Self::CodeName => "code.name".into(),
            Self::BrandName => "brand.name".into(),
        }
    }

    /// Whether its value differs from one customer to the next (rendered with its
    /// fallback where one text goes to many customers).
    pub fn per_customer(&self) -> bool {
        matches!(
            self,
            Self::CustomerName | Self::CustomerTrait(_) | Self::CodeName
        )
    }
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageTemplate {
    pub id: MessageTemplateId,
    pub name: String,
    /// The text, in Jinja syntax: `你好 {{ customer.name }}，…`.
    pub body: String,
    /// What each variable renders when its value is missing or blank.
    pub fallbacks: BTreeMap<String, String>,
    /// The variables the body names, in order of their paths.
    pub variables: Vec<String>,
    /// Whether the body names a value that differs per customer (a WeCom mass send
    /// renders those with their fallbacks: one text per member task).
    pub per_customer: bool,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A template as a mass send keeps it (`broadcasts.template`): what it was when the send
/// was made, so that a template changed or deleted later does not change a send that was
/// previewed, and every try of a batch renders the same text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSnapshot {
    pub id: MessageTemplateId,
    pub name: String,
    pub body: String,
    pub fallbacks: BTreeMap<String, String>,
}

impl TemplateSnapshot {
    pub fn of(template: &MessageTemplate) -> Self {
        Self {
            id: template.id,
            name: template.name.clone(),
            body: template.body.clone(),
            fallbacks: template.fallbacks.clone(),
        }
    }

    /// The template to render (its variables read again from the body).
    pub fn template(&self) -> Result<MessageTemplate, DomainError> {
        let named = variables(&self.body)?;
        Ok(MessageTemplate {
            id: self.id,
            name: self.name.clone(),
            body: self.body.clone(),
            fallbacks: self.fallbacks.clone(),
            per_customer: named.iter().any(Variable::per_customer),
            variables: named.iter().map(Variable::path).collect(),
            created_at: 0,
            updated_at: 0,
        })
    }
}

/// A template as given to create one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageTemplate {
    pub name: String,
    pub body: String,
    /// A fallback for every variable the body names (`{"customer.name": "朋友"}`).
    #[serde(default)]
    pub fallbacks: BTreeMap<String, String>,
}

/// Changes to a template; fields left out stay. `fallbacks`, when given, replaces them
/// all.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplateChange {
    pub name: Option<String>,
    pub body: Option<String>,
    pub fallbacks: Option<BTreeMap<String, String>>,
}

/// A template checked and ready to store: it renders with its fallbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplateSpec {
    pub name: String,
    pub body: String,
    /// The fallbacks of the variables the body names (others given are dropped).
    pub fallbacks: BTreeMap<String, String>,
}

impl NewMessageTemplate {
    pub fn check(self) -> Result<MessageTemplateSpec, DomainError> {
        spec(&self.name, self.body, self.fallbacks)
    }
}

impl MessageTemplateChange {
    /// The template as it will be after the change.
    pub fn apply(self, to: &MessageTemplate) -> Result<MessageTemplateSpec, DomainError> {
        spec(
            self.name.as_deref().unwrap_or(&to.name),
            self.body.unwrap_or_else(|| to.body.clone()),
            self.fallbacks.unwrap_or_else(|| to.fallbacks.clone()),
        )
    }
}

fn spec(
    name: &str,
    body: String,
    fallbacks: BTreeMap<String, String>,
) -> Result<MessageTemplateSpec, DomainError> {
    let name = check_name("name", name, 100)?;
    if body.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if body.len() > TEXT_MAX_BYTES {
        return Err(DomainError::invalid(
            "body",
            format!("must be at most {TEXT_MAX_BYTES} bytes (WeCom's limit for a text)"),
        ));
    }
    let named = variables(&body)?;
    let mut kept = BTreeMap::new();
    for variable in &named {
        let path = variable.path();
        let fallback = fallbacks.get(&path).map(|f| f.trim()).unwrap_or("");
        if fallback.is_empty() {
            return Err(DomainError::invalid(
                "fallbacks",
                format!("`{path}` needs a fallback: what it says when the value is missing"),
            ));
        }
        if fallback.chars().count() > FALLBACK_MAX_CHARS || fallback.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "fallbacks",
                format!(
                    "the fallback of `{path}` must be at most {FALLBACK_MAX_CHARS} characters, \
                     without control characters"
                ),
            ));
        }
        kept.insert(path, fallback.to_owned());
    }
    // it renders with nothing known: every value its fallback
    render_with(&body, &kept, &named, |_| None).map_err(|e| match e {
        RenderError::Invalid(message) => DomainError::invalid("body", message),
    })?;
    Ok(MessageTemplateSpec {
        name,
        body,
        fallbacks: kept,
    })
}

/// The variables a body names, each once; a syntax error or a name siyu does not know is
/// refused (422, on `body`).
pub fn variables(body: &str) -> Result<BTreeSet<Variable>, DomainError> {
    check_syntax(body).map_err(|message| DomainError::invalid("body", message))?;
    let env = environment();
    let template = env
        .template_from_str(body)
        .map_err(|e| DomainError::invalid("body", format!("is not a valid template: {e}")))?;
    let mut named = BTreeSet::new();
    for path in template.undeclared_variables(true) {
        let variable = Variable::parse(&path).ok_or_else(|| {
            DomainError::invalid(
                "body",
                format!(
                    "names `{path}`, which siyu does not know: use customer.name, \
                     customer.traits.<key>, member.name, code.name or brand.name"
                ),
            )
        })?;
        named.insert(variable);
    }
    Ok(named)
}

/// The filters a value may go through (`{{ customer.name | upper }}`).
const FILTERS: [&str; 5] = ["upper", "lower", "title", "capitalize", "trim"];

/// What a body may say: text, values (`{{ path }}`, `{{ path | filter }}`), and
/// `{% if %}` / `{% elif %}` / `{% else %}` / `{% endif %}` over values (`path`,
/// `not path`, `path == "text"`, `path != "text"`, joined by `and` / `or`), comments.
/// Nothing else of Jinja: no loops, no `set`, no `raw`, no literals printed, no
/// operators that make text, so a body can neither print template syntax nor make a
/// text bigger than what it says plus its values.
fn check_syntax(body: &str) -> Result<(), String> {
    let mut rest = body;
    while let Some(at) = rest.find('{') {
        let after = &rest[at + 1..];
        let (close, kind) = match after.chars().next() {
            Some('{') => ("}}", "value"),
            Some('%') => ("%}", "statement"),
            Some('#') => ("#}", "comment"),
            _ => {
                rest = after;
                continue;
            }
        };
        let inner_start = &after[1..];
        let end = inner_start
            .find(close)
            .ok_or_else(|| format!("is not a valid template: a {kind} is not closed"))?;
        let inner = inner_start[..end]
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        match kind {
            "value" => check_value(inner)?,
            "statement" => check_statement(inner)?,
            _ => {}
        }
        rest = &inner_start[end + close.len()..];
    }
    Ok(())
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && !part.starts_with(|c: char| c.is_ascii_digit())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn check_value(inner: &str) -> Result<(), String> {
    let mut parts = inner.split('|').map(str::trim);
    let path = parts.next().unwrap_or("");
    if !is_path(path) {
        return Err(format!(
            "may print only values such as {{{{ customer.name }}}}, not {{{{ {inner} }}}}"
        ));
    }
    for filter in parts {
        if !FILTERS.contains(&filter) {
            return Err(format!(
                "uses the filter `{filter}`: only {} are allowed",
                FILTERS.join(", ")
            ));
        }
    }
    Ok(())
}

fn check_statement(inner: &str) -> Result<(), String> {
    let (keyword, condition) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    match keyword {
        "else" | "endif" if condition.trim().is_empty() => Ok(()),
        "if" | "elif" => check_condition(condition.trim()),
        _ => Err(format!(
            "may use only if, elif, else and endif, not {{% {inner} %}}"
        )),
    }
}

fn check_condition(condition: &str) -> Result<(), String> {
    let refuse = || {
        Err(format!(
            "a condition compares values with text (customer.traits.level == \"金卡\"),              not `{condition}`"
        ))
    };
    if condition.is_empty() {
        return refuse();
    }
    // split on " and " / " or " outside quotes: quotes hold only plain text, so a
    // whole-word split of the unquoted parts is enough
    let mut terms = Vec::new();
    let mut term = String::new();
    let mut quoted = None;
    let words: Vec<&str> = condition.split(' ').collect();
    for word in words {
        for c in word.chars() {
            if let Some(q) = quoted {
                if c == q {
                    quoted = None;
                }
            } else if c == '"' || c == '\'' {
                quoted = Some(c);
            }
        }
        if quoted.is_none() && (word == "and" || word == "or") {
            terms.push(std::mem::take(&mut term));
        } else {
            if !term.is_empty() {
                term.push(' ');
            }
            term.push_str(word);
        }
    }
    if quoted.is_some() {
        return refuse();
    }
    terms.push(term);
    for term in terms {
        let term = term.trim();
        let term = term.strip_prefix("not ").map(str::trim).unwrap_or(term);
        let ok = match term.split_once("==").or_else(|| term.split_once("!=")) {
            None => is_path(term),
            Some((left, right)) => is_path(left.trim()) && is_text_literal(right.trim()),
        };
        if !ok {
            return refuse();
        }
    }
    Ok(())
}

fn is_text_literal(s: &str) -> bool {
    let quoted = |q: char| {
        s.len() >= 2
            && s.starts_with(q)
            && s.ends_with(q)
            && !s[1..s.len() - 1].contains(q)
            && !s[1..s.len() - 1].contains('\\')
            && s.chars().count() <= VALUE_MAX_CHARS + 2
    };
    quoted('"') || quoted('\'')
}

/// A variable's value in a rendering, and whether its fallback stood in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RenderedValue {
    pub variable: String,
    pub value: String,
    pub fell_back: bool,
}

/// A rendered text and the values that went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rendered {
    pub text: String,
    pub values: Vec<RenderedValue>,
}

/// Why a stored template did not render for a recipient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Invalid(String),
}

impl MessageTemplate {
    /// Renders for one recipient: `value` answers each variable's value (`None` when
    /// unknown); a missing or blank one renders its fallback.
    ///
    /// When a recipient's values do not render (`{{ customer.name[5] }}` and a short
    /// name), the fallbacks do: a saved template rendered with them.
    pub fn render(
        &self,
        value: impl Fn(&Variable) -> Option<String>,
    ) -> Result<Rendered, RenderError> {
        let named: BTreeSet<Variable> = self
            .variables
            .iter()
            .filter_map(|p| Variable::parse(p))
            .collect();
        render_with(&self.body, &self.fallbacks, &named, value)
            .or_else(|_| render_with(&self.body, &self.fallbacks, &named, |_| None))
    }

    /// Renders for one recipient as a send needs it: the text only, the fallbacks'
    /// rendering when the values' would pass WeCom's limit. `None` when neither gives a
    /// text a customer may receive (not blank, within 4,000 bytes, no template syntax):
    /// a template saved under today's rules always has one.
    pub fn render_text(&self, value: impl Fn(&Variable) -> Option<String>) -> Option<String> {
        let fitting = |r: Result<Rendered, RenderError>| {
            r.ok().map(|r| r.text).filter(|t| {
                !t.trim().is_empty()
                    && t.len() <= TEXT_MAX_BYTES
                    && !t.contains("{{")
                    && !t.contains("{%")
            })
        };
        fitting(self.render(value)).or_else(|| fitting(self.render(|_| None)))
    }

    /// Renders once for many customers (a WeCom member task): values per customer are
    /// their fallbacks.
    pub fn render_shared(
        &self,
        value: impl Fn(&Variable) -> Option<String>,
    ) -> Result<Rendered, RenderError> {
        self.render(|v| if v.per_customer() { None } else { value(v) })
    }
}

fn environment() -> Environment<'static> {
    // no builtins: only the filters below (minijinja's others can make a string as long
    // as they are told to, before any check of the text's length could run)
    let mut env = Environment::empty();
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("title", minijinja::filters::title);
    env.add_filter("capitalize", minijinja::filters::capitalize);
    env.add_filter("trim", minijinja::filters::trim);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

/// A value as text: no control characters, and braces made full-width, so that no
/// value can bring template syntax (`{{`, `{%`) into a text, alone or beside the body's
/// own braces.
fn plain(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .map(|c| match c {
            '{' => '｛',
            '}' => '｝',
            c => c,
        })
        .collect()
}

/// Whether a value shows nothing: only white space, or characters that print nothing
/// (zero-width ones, the byte-order mark, the Hangul fillers WeCom nicknames use, the
/// blank Braille pattern).
fn blank(value: &str) -> bool {
    value.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{FEFF}'
                    | '\u{00AD}'
                    | '\u{034F}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{3164}'
                    | '\u{FFA0}'
                    | '\u{2800}'
            )
    })
}

/// The longest value, in characters, a text takes; a longer one renders its fallback.
pub const VALUE_MAX_CHARS: usize = 200;

/// Whether a text shows template syntax (never sent).
fn shows_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

fn render_with(
    body: &str,
    fallbacks: &BTreeMap<String, String>,
    named: &BTreeSet<Variable>,
    value: impl Fn(&Variable) -> Option<String>,
) -> Result<Rendered, RenderError> {
    let mut context = Map::new();
    let mut values = Vec::with_capacity(named.len());
    for variable in named {
        let path = variable.path();
        let given = value(variable)
            .filter(|v| !blank(v) && v.trim().chars().count() <= VALUE_MAX_CHARS)
            .map(|v| plain(v.trim()));
        let fell_back = given.is_none();
        let text = match given {
            Some(v) => v,
            None => fallbacks
                .get(&path)
                .cloned()
                .ok_or_else(|| RenderError::Invalid(format!("`{path}` has no fallback")))?,
        };
        insert_path(&mut context, &path, &text);
        values.push(RenderedValue {
            variable: path,
            value: text,
            fell_back,
        });
    }
    let env = environment();
    let text = env
        .render_str(body, Value::Object(context))
        .map_err(|e| RenderError::Invalid(format!("does not render: {e}")))?;
    if blank(&text) {
        return Err(RenderError::Invalid("renders an empty text".into()));
    }
    if shows_syntax(&text) {
        return Err(RenderError::Invalid(
            "renders template syntax ({{, {% or {#) into the text".into(),
        ));
    }
    if text.len() > TEXT_MAX_BYTES {
        return Err(RenderError::Invalid(format!(
            "renders {} bytes, more than the {TEXT_MAX_BYTES} a text may carry",
            text.len()
        )));
    }
    Ok(Rendered { text, values })
}

/// Puts `text` at a dotted path of the context (`customer.traits.level`).
fn insert_path(context: &mut Map<String, Value>, path: &str, text: &str) {
    let mut parts = path.split('.').peekable();
    let mut at = context;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_owned(), json!(text));
            return;
        }
        let next = at
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        at = next.as_object_mut().expect("an object, just made so");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(body: &str, fallbacks: &[(&str, &str)]) -> Result<MessageTemplate, DomainError> {
        let spec = NewMessageTemplate {
            name: "t".into(),
            body: body.into(),
            fallbacks: fallbacks
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
        .check()?;
        let variables = variables(&spec.body)?;
        Ok(MessageTemplate {
            id: MessageTemplateId(1),
            name: spec.name,
            per_customer: variables.iter().any(Variable::per_customer),
            variables: variables.iter().map(Variable::path).collect(),
            body: spec.body,
            fallbacks: spec.fallbacks,
            created_at: 0,
            updated_at: 0,
        })
    }

    #[test]
    fn values_render_and_missing_or_blank_ones_render_their_fallback() {
        let t = template(
            "你好 {{ customer.name }}，我是{{ member.name }}。会员等级：{{ customer.traits.level }}",
            &[
                ("customer.name", "朋友"),
                ("member.name", "顾问"),
                ("customer.traits.level", "普通"),
            ],
        )
        .unwrap();
        let full = t
            .render(|v| match v {
                Variable::CustomerName => Some("王芳".into()),
                Variable::MemberName => Some("李雷".into()),
                Variable::CustomerTrait(k) if k == "level" => Some("金卡".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(full.text, "你好 王芳，我是李雷。会员等级：金卡");
        assert!(full.values.iter().all(|v| !v.fell_back));
        let sparse = t
            .render(|v| match v {
                Variable::CustomerName => Some("   ".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(sparse.text, "你好 朋友，我是顾问。会员等级：普通");
        assert!(sparse.values.iter().all(|v| v.fell_back));
    }

    #[test]
    fn a_shared_rendering_uses_fallbacks_for_what_differs_per_customer() {
        let t = template(
            "{{ customer.name }}，{{ member.name }}为您服务",
            &[("customer.name", "您好"), ("member.name", "顾问")],
        )
        .unwrap();
        assert!(t.per_customer);
        let shared = t
            .render_shared(|v| match v {
                Variable::CustomerName => Some("王芳".into()),
                Variable::MemberName => Some("李雷".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(shared.text, "您好，李雷为您服务");
    }

    #[test]
    fn a_value_never_brings_template_syntax_into_the_text() {
        let t = template("你好 {{ customer.name }}", &[("customer.name", "朋友")]).unwrap();
        let r = t
            .render(|_| Some("{{ brand.name }}{% if 1 %}x{% endif %}".into()))
            .unwrap();
        assert!(
            !r.text.contains("{{") && !r.text.contains("{%"),
            "{}",
            r.text
        );
    }

    #[test]
    fn every_variable_needs_a_fallback() {
        let e = template("你好 {{ customer.name }}", &[]).unwrap_err();
        assert!(e.to_string().contains("customer.name"), "{e}");
        let e = template("你好 {{ customer.name }}", &[("customer.name", "  ")]).unwrap_err();
        assert!(e.to_string().contains("fallback"), "{e}");
    }

    #[test]
    fn unknown_names_syntax_errors_and_empty_texts_are_refused() {
        for (body, says) in [
            ("{{ customer.phone }}", "does not know"),
            ("{{ secret }}", "does not know"),
            ("{{ customer.traits }}", "does not know"),
            ("你好 {{ customer.name ", "not closed"),
            ("你好 {{ customer.name }", "not closed"),
            ("{% include 'x' %}", "only if, elif"),
            (
                "{% for i in range(100000) %}{{ i }}{% endfor %}",
                "only if, elif",
            ),
            ("{% set a = 'x' %}{{ a }}", "only if, elif"),
            ("{% raw %}{{ customer.name }}{% endraw %}", "only if, elif"),
            ("{{ '{{' }}", "only values"),
            ("{{ 'x' * 100000000 }}", "only values"),
            ("{{ customer.name ~ customer.name }}", "only values"),
            ("{{ customer['name'] }}", "only values"),
            ("{{ customer.name[3] }}", "only values"),
            ("{{ customer.name | indent(1000000000000) }}", "the filter"),
            ("{{ customer.name | attr('x') }}", "the filter"),
            ("{% if customer.name * 3 %}x{% endif %}", "a condition"),
            (
                "{% if customer.name == range(3) %}x{% endif %}",
                "a condition",
            ),
            ("{% if customer.name %}{% endif %}", "empty"),
            ("   ", "must not be empty"),
        ] {
            let e = template(body, &[("customer.name", "朋友")]).unwrap_err();
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
        let long = "长".repeat(1_400);
        assert!(
            template(&long, &[])
                .unwrap_err()
                .to_string()
                .contains("4000")
        );
    }

    #[test]
    fn a_value_that_shows_nothing_or_is_too_long_renders_its_fallback() {
        let t = template("你好 {{ customer.name }}，", &[("customer.name", "朋友")]).unwrap();
        for shows_nothing in [
            "\u{3164}",
            "\u{200B}\u{FEFF}",
            " \u{2800} ",
            "\u{115F}\u{1160}",
        ] {
            let r = t.render(|_| Some(shows_nothing.into())).unwrap();
            assert_eq!(r.text, "你好 朋友，", "{shows_nothing:?}");
            assert!(r.values[0].fell_back);
        }
        let long = "名".repeat(VALUE_MAX_CHARS + 1);
        assert_eq!(
            t.render(|_| Some(long.clone())).unwrap().text,
            "你好 朋友，"
        );
    }

    #[test]
    fn braces_in_values_never_meet_the_bodys_into_template_syntax() {
        let t = template("{{ customer.name }}{", &[("customer.name", "朋友")]).unwrap();
        for value in ["{{{", "{", "x{", "{%", "{#", "}}"] {
            let r = t.render(|_| Some(value.into())).unwrap();
            assert!(!shows_syntax(&r.text), "{value:?} made {:?}", r.text);
            assert!(!r.values[0].fell_back, "{value:?}");
        }
    }

    #[test]
    fn conditions_compare_values_with_text() {
        let t = template(
            "{% if customer.traits.level == \"金卡\" and not code.name %}尊贵的{% elif customer.traits.level != '普通' %}亲爱的{% else %}你好{% endif %} {{ customer.name | trim }}",
            &[
                ("customer.name", "朋友"),
                ("customer.traits.level", "普通"),
                ("code.name", "无"),
            ],
        )
        .unwrap();
        let r = t
            .render(|v| match v {
                Variable::CustomerTrait(_) => Some("金卡".into()),
                Variable::CustomerName => Some("王芳".into()),
                _ => None,
            })
            .unwrap();
        // code.name fell back to 无, which is not empty: the first branch is not taken
        assert_eq!(r.text, "亲爱的 王芳");
        assert_eq!(t.render(|_| None).unwrap().text, "你好 朋友");
    }

    #[test]
    fn fallbacks_of_variables_the_body_does_not_name_are_dropped() {
        let t = template(
            "{{ brand.name }}上新",
            &[("brand.name", "本店"), ("customer.name", "朋友")],
        )
        .unwrap();
        assert_eq!(t.fallbacks.len(), 1);
        assert!(!t.per_customer);
        assert_eq!(t.variables, vec!["brand.name"]);
    }

    #[test]
    fn filters_of_the_builtins_work() {
        let t = template(
            "{{ customer.name | upper }}!",
            &[("customer.name", "friend")],
        )
        .unwrap();
        assert_eq!(t.render(|_| None).unwrap().text, "FRIEND!");
    }
}

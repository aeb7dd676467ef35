//! Message templates: a text with personalisation (`{{ customer.name }}`), rendered by
//! minijinja, Jinja's syntax without code execution, files or includes (there is no
//! loader) and with a fuel limit, so a template can neither reach outside its values nor
//! loop for ever.
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

/// The functions minijinja's builtins put beside the values (`range(3)`), which its
/// list of undeclared names includes.
const BUILTIN_FUNCTIONS: [&str; 3] = ["range", "dict", "namespace"];

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
    let env = environment();
    let template = env
        .template_from_str(body)
        .map_err(|e| DomainError::invalid("body", format!("is not a valid template: {e}")))?;
    let mut named = BTreeSet::new();
    for path in template.undeclared_variables(true) {
        let root = path.split('.').next().unwrap_or("");
        if BUILTIN_FUNCTIONS.contains(&root) {
            continue; // a function of minijinja's builtins, not a value
        }
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
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

/// A value as text that carries no template syntax and no control characters.
fn plain(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect::<String>()
        .replace("{{", "{ {")
        .replace("}}", "} }")
        .replace("{%", "{ %")
        .replace("%}", "% }")
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
            .map(|v| plain(v.trim()))
            .filter(|v| !v.trim().is_empty());
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
    if text.trim().is_empty() {
        return Err(RenderError::Invalid("renders an empty text".into()));
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
            ("你好 {{ customer.name ", "not a valid template"),
            ("{% include 'x' %}", "not a valid template"),
            (
                "{% for i in range(100000) %}{{ i }}{% endfor %}",
                "does not render",
            ),
            ("{% if false %}x{% endif %}", "empty"),
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

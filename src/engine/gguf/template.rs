//! The chat template from `tokenizer.chat_template`, rendered with minijinja.

use anyhow::{Result, anyhow};
use minijinja::{Environment, Error, ErrorKind, Value, context};
use serde::Serialize;

/// One message as chat templates expect it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A compiled chat template and the tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

/// ChatML, for files that carry no template.
const FALLBACK: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n\
{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

impl ChatTemplate {
    /// Compiles `source`, or ChatML when the file has no template.
    pub fn new(source: Option<&str>, bos: &str, eos: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.unwrap_or(FALLBACK).to_owned())
            .map_err(|err| anyhow!("the model's chat template does not compile: {err}"))?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_owned(),
            eos: eos.to_owned(),
        })
    }

    /// Renders the conversation, ending with the opening of the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|err| anyhow!("chat template: {err}"))?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())])
            })
            .collect();
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
            })
            .map_err(|err| anyhow!("the model's chat template failed: {err}"))
    }
}

/// `raise_exception(message)` in a template: fails the render with that message.
fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn fallback_is_chatml() {
        let template = ChatTemplate::new(None, "", "").ok();
        let text = template.and_then(|t| t.render(&[msg("user", "Hi")]).ok());
        assert_eq!(
            text.as_deref(),
            Some("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
    }

    #[test]
    fn raise_exception_reports_the_message() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}";
        let template = ChatTemplate::new(Some(source), "", "").ok();
        let err = template
            .and_then(|t| t.render(&[msg("assistant", "x")]).err())
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("roles must alternate"), "{err}");
    }

    #[test]
    fn python_string_methods_work() {
        let source =
            "{{ bos_token }}{% for m in messages %}{{ m.content.strip() | upper }}{% endfor %}";
        let template = ChatTemplate::new(Some(source), "<s>", "</s>").ok();
        let text = template.and_then(|t| t.render(&[msg("user", "  hi ")]).ok());
        assert_eq!(text.as_deref(), Some("<s>HI"));
    }
}

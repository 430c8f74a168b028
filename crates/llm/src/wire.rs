//! The OpenAI chat-completions wire format, and nothing else knows it: the
//! request body (with a JSON-schema `response_format` where the server
//! supports it), the answer (`choices[0].message.content`, `usage`), and
//! tolerant reading of JSON inside the content for servers that ignore the
//! schema (prose around it, a ```json fence).

use serde_json::{json, Map, Value};
use switchyard_engine::classify::Wanted;

/// The system message: the version's prompt file, then the answer format.
pub fn system_message(prompt: &str, ask: Wanted) -> String {
    let format = match ask {
        Wanted::Class(classes) => format!(
            "Responda somente com um objeto JSON {{\"class\": \"...\"}} em que class é exatamente uma de: {}; ou \"none\" se nenhuma se aplicar.",
            classes.join(", ")
        ),
        Wanted::Fields(fields) => format!(
            "Responda somente com um objeto JSON com as chaves {}; use null para o que não estiver no texto. Copie os valores como aparecem, sem inventar.",
            fields.join(", ")
        ),
        // Outside calls never reach a model (`service::run_turn_with` sends
        // them to the `Outside` caller); an empty object is the safe shape.
        Wanted::Outside => "Responda somente com {}.".to_owned(),
    };
    format!("{}\n\n{format}", prompt.trim_end())
}

/// The JSON schema the answer must follow.
pub fn schema(ask: Wanted) -> Value {
    match ask {
        Wanted::Class(classes) => {
            let mut names: Vec<&str> = classes.to_vec();
            names.push("none");
            json!({
                "type": "object",
                "properties": { "class": { "type": "string", "enum": names } },
                "required": ["class"],
                "additionalProperties": false,
            })
        }
        Wanted::Fields(fields) => {
            let properties: Map<String, Value> =
                fields.iter().map(|field| ((*field).to_owned(), json!({ "type": ["string", "null"] }))).collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": fields,
                "additionalProperties": false,
            })
        }
        Wanted::Outside => json!({ "type": "object", "additionalProperties": false }),
    }
}

/// The request body. `with_schema` adds the JSON-schema response format.
pub fn body(model: &str, system: &str, text: &str, ask: Wanted, with_schema: bool) -> Value {
    let mut body = json!({
        "model": model,
        "temperature": 0,
        "max_tokens": 100,
        "messages": [
            { "role": "system", "content": system },
            { "role": "user", "content": text },
        ],
    });
    if with_schema {
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": { "name": "answer", "strict": true, "schema": schema(ask) },
        });
    }
    body
}

/// What a 200 answer carried.
#[derive(Debug, PartialEq)]
pub struct Completion {
    pub content: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Reads a chat-completions response body; `None` when it is not one.
pub fn completion(body: &str) -> Option<Completion> {
    let value: Value = serde_json::from_str(body).ok()?;
    let content = value.get("choices")?.get(0)?.get("message")?.get("content")?.as_str()?.to_owned();
    let usage = value.get("usage");
    let tokens = |key: &str| usage.and_then(|usage| usage.get(key)).and_then(Value::as_u64).unwrap_or(0);
    Some(Completion { content, prompt_tokens: tokens("prompt_tokens"), completion_tokens: tokens("completion_tokens") })
}

/// The error message of an error body (`{"error": {"message": ...}}`), if any.
pub fn error_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    error.get("message").and_then(Value::as_str).or_else(|| error.as_str()).map(str::to_owned)
}

/// The string values of the first JSON object in `content` (the whole
/// content, a fenced block, or the first `{...}` inside prose). `null`
/// values are left out. `None` when there is no JSON object.
pub fn values(content: &str) -> Option<Vec<(String, String)>> {
    let object = parse_object(content.trim())?;
    Some(
        object
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::String(text) => Some((key, text.trim().to_owned())),
                Value::Number(number) => Some((key, number.to_string())),
                _ => None,
            })
            .collect(),
    )
}

fn parse_object(content: &str) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(object)) = serde_json::from_str(content) {
        return Some(object);
    }
    // The first '{' whose balanced '}' closes a valid object.
    let bytes = content.as_bytes();
    for (start, _) in content.match_indices('{') {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (offset, byte) in bytes[start..].iter().enumerate() {
            match (*byte, in_string) {
                (b'\\', true) if !escaped => {
                    escaped = true;
                    continue;
                }
                (b'"', _) if !escaped => in_string = !in_string,
                (b'{', false) => depth += 1,
                (b'}', false) => {
                    depth -= 1;
                    if depth == 0 {
                        if let Ok(Value::Object(object)) = serde_json::from_str(&content[start..=start + offset]) {
                            return Some(object);
                        }
                        break;
                    }
                }
                _ => {}
            }
            escaped = false;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_in_plain_fenced_and_chatty_content() {
        let expected = Some(vec![("class".to_owned(), "renewal".to_owned())]);
        assert_eq!(values(r#"{"class":"renewal"}"#), expected);
        assert_eq!(values("```json\n{\"class\": \"renewal\"}\n```"), expected);
        assert_eq!(values("Claro! A resposta é {\"class\": \"renewal\"} espero ter ajudado {"), expected);
        assert_eq!(values(r#"{"document": null, "email": "a@b.com"}"#), Some(vec![("email".to_owned(), "a@b.com".to_owned())]));
        assert_eq!(values("renewal"), None);
        assert_eq!(values("{\"class\": \"ren"), None);
    }

    #[test]
    fn completion_reads_content_and_usage() {
        let body = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        assert_eq!(completion(body), Some(Completion { content: "{}".to_owned(), prompt_tokens: 12, completion_tokens: 3 }));
        assert_eq!(completion(r#"{"choices":[]}"#), None);
        assert_eq!(error_message(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#).as_deref(), Some("Rate limit reached"));
    }

    #[test]
    fn the_schema_lists_the_classes_and_none() {
        let schema = schema(Wanted::Class(&["buy", "renew"]));
        assert_eq!(schema["properties"]["class"]["enum"], json!(["buy", "renew", "none"]));
    }
}

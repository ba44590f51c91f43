//! The `web_search` tool: asks a SearXNG-compatible endpoint
//! (`GET URL?q=QUERY&format=json`) and keeps the top results' titles, URLs and
//! snippets.

use std::time::Duration;

use serde::Deserialize;

/// Results kept from one search.
pub const TOP_RESULTS: usize = 5;
/// Longest snippet kept, in characters.
const SNIPPET_CHARS: usize = 400;
/// Time allowed for the whole search request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The output of a search that cannot run because no endpoint is set.
pub const NOT_CONFIGURED: &str = "web_search is not configured on this server";

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    content: String,
}

/// Builds the HTTP client used for searches.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Searches `endpoint` for `query` and formats the top results.
pub async fn search(
    client: &reqwest::Client,
    endpoint: &str,
    query: &str,
) -> Result<String, String> {
    let response = client
        .get(endpoint)
        .query(&[("q", query), ("format", "json")])
        .send()
        .await
        .map_err(|err| {
            format!(
                "the search endpoint cannot be reached: {}",
                err.without_url()
            )
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the search endpoint answered {status}"));
    }
    let answer: Answer = response.json().await.map_err(|err| {
        format!(
            "the search endpoint sent no JSON results: {}",
            err.without_url()
        )
    })?;
    Ok(format_results(query, &answer.results))
}

fn format_results(query: &str, results: &[Hit]) -> String {
    if results.is_empty() {
        return format!("No web results for {query:?}.");
    }
    let mut out = String::new();
    for (index, hit) in results.iter().take(TOP_RESULTS).enumerate() {
        if index > 0 {
            out.push_str("\n\n");
        }
        let snippet: String = hit.content.trim().chars().take(SNIPPET_CHARS).collect();
        out.push_str(&format!(
            "[{}] {}\n{}\n{}",
            index + 1,
            hit.title.trim(),
            hit.url,
            snippet
        ));
    }
    out
}

/// Checks a `--search-url` value: an http or https URL.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| format!("--search-url {url:?} is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "--search-url {url:?} must start with http:// or https://"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_numbered_and_capped() {
        let hits: Vec<Hit> = (0..8)
            .map(|i| Hit {
                title: format!("Title {i}"),
                url: format!("http://127.0.0.1/{i}"),
                content: "x".repeat(1000),
            })
            .collect();
        let text = format_results("q", &hits);
        assert!(
            text.starts_with("[1] Title 0\nhttp://127.0.0.1/0\n"),
            "{text}"
        );
        assert!(text.contains("[5] Title 4"));
        assert!(!text.contains("[6]"));
        assert!(
            text.lines()
                .all(|line| line.chars().count() <= SNIPPET_CHARS)
        );
    }

    #[test]
    fn endpoints_must_be_http() {
        assert!(check_endpoint("http://127.0.0.1:8888/search").is_ok());
        assert!(check_endpoint("file:///etc/passwd").is_err());
        assert!(check_endpoint("not a url").is_err());
    }
}

//! The apiserver's own request counters (its `/metrics`): how the upgrade
//! tests and the benchmark count writes, including a write that changed
//! nothing (it moves no resourceVersion, but it is served and counted).
//! The benchmark includes this file by path, so it uses nothing else of
//! `support`.

use std::collections::BTreeMap;

use kube::Client;

/// The verbs that write.
pub const WRITES: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

/// The requests the apiserver has served so far, under three kinds of key:
/// `RESOURCE`, its writes; `RESOURCE/SUBRESOURCE VERB`, every request; and
/// `terminated watchers RESOURCE`, watchers it closed because they fell
/// behind (each costs a re-list).
pub async fn requests(client: &Client) -> Result<BTreeMap<String, f64>, kube::Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a static request");
    let text = client.request_text(request).await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("apiserver_terminated_watchers_total{") {
            let key = format!("terminated watchers {}", label(line, "resource"));
            *out.entry(key).or_insert(0.0) += value(line);
        } else if line.starts_with("apiserver_request_total{") {
            let (verb, resource) = (label(line, "verb"), label(line, "resource"));
            if WRITES.contains(&verb.as_str()) {
                *out.entry(resource.clone()).or_insert(0.0) += value(line);
            }
            let key = format!("{resource}/{} {verb}", label(line, "subresource"));
            *out.entry(key).or_insert(0.0) += value(line);
        }
    }
    Ok(out)
}

fn label(line: &str, name: &str) -> String {
    line.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

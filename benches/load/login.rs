//! The browserless login driver. Each login starts with a fresh cookie jar at the protected
//! page (`--target`), follows every redirect like a browser (cookies scoped to their origin and
//! path), fills in the test OP's sign-in form when it shows one, and counts as a success only
//! when it ends on the target with a 200 whose `--expect-header` proves the upstream saw the
//! identity. Prints one JSON object: logins/s, login latency, failures by reason, and the CPU
//! seconds (utime+stime, descendants included) used meanwhile by each `--cpu name=PID`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, COOKIE, LOCATION, SET_COOKIE, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::json;
use url::Url;

use super::Args;

/// Redirects and form posts allowed in one login.
const MAX_STEPS: usize = 30;

struct Plan {
    target: Url,
    user: String,
    password: String,
    expect: Option<(String, String)>,
}

/// One browser's cookies, scoped to origin and path (stricter than a browser, which ignores
/// ports: the OP's cookies never reach the proxy and the other way round).
#[derive(Default)]
struct Jar {
    cookies: Vec<StoredCookie>,
}

struct StoredCookie {
    origin: String,
    path: String,
    name: String,
    value: String,
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Jar {
    fn store(&mut self, url: &Url, headers: &HeaderMap) {
        for raw in headers.get_all(SET_COOKIE) {
            let Ok(raw) = raw.to_str() else { continue };
            let mut parts = raw.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let mut path = None;
            let mut delete = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "path" if v.starts_with('/') => path = Some(v.to_owned()),
                    "max-age" => delete |= v.parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => delete |= v.contains("1970"),
                    _ => {}
                }
            }
            let path = path.unwrap_or_else(|| default_path(url));
            let origin = origin(url);
            self.cookies
                .retain(|c| !(c.origin == origin && c.path == path && c.name == name));
            if !delete {
                self.cookies.push(StoredCookie {
                    origin,
                    path,
                    name,
                    value,
                });
            }
        }
    }

    fn header(&self, url: &Url) -> Option<String> {
        let origin = origin(url);
        let path = url.path();
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| c.origin == origin && path_matches(path, &c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// RFC 6265 5.1.4 default-path.
fn default_path(url: &Url) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => p[..i].to_owned(),
    }
}

/// RFC 6265 5.1.4 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// The `action` of the first POST form in an HTML page.
fn form_action(html: &str) -> Option<String> {
    let form = html.find("<form")?;
    let rest = &html[form..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let a = tag.find("action=\"")? + "action=\"".len();
    let action = &tag[a..];
    let action = &action[..action.find('"')?];
    Some(html_unescape(action))
}

fn html_unescape(s: &str) -> String {
    s.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#47;", "/")
        .replace("&#x2F;", "/")
}

fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    );
    h.insert(
        USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) sso-proxy-bench/1"),
    );
    h.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
    h
}

/// One complete login; `Ok(jar)` when it ended on the target with the identity upstream.
async fn login(client: &reqwest::Client, plan: &Plan) -> Result<Jar, String> {
    let mut jar = Jar::default();
    let mut method = Method::GET;
    let mut url = plan.target.clone();
    let mut body: Option<String> = None;
    let mut posted_login = false;
    for _ in 0..MAX_STEPS {
        let mut req = client
            .request(method.clone(), url.clone())
            .headers(browser_headers());
        if let Some(c) = jar.header(&url) {
            req = req.header(COOKIE, c);
        }
        if let Some(b) = body.take() {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{} {}: {e}", method, short(&url)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        jar.store(&url, &headers);
        let text = resp
            .text()
            .await
            .map_err(|e| format!("reading {}: {e}", short(&url)))?;
        if status.is_redirection() {
            let location = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{status} without Location at {}", short(&url)))?;
            url = url
                .join(location)
                .map_err(|_| format!("bad Location {location:?}"))?;
            if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT
            {
                method = Method::GET;
            }
            continue;
        }
        if status != StatusCode::OK {
            return Err(format!("HTTP {} at {}", status.as_u16(), short(&url)));
        }
        let at_target = origin(&url) == origin(&plan.target) && url.path() == plan.target.path();
        if at_target {
            if let Some((name, want)) = &plan.expect {
                let got = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
                if got != Some(want.as_str()) {
                    return Err(format!("200 at the target but {name}={got:?}"));
                }
            }
            return Ok(jar);
        }
        // The OP's sign-in form.
        if !posted_login && url.path().starts_with("/interaction/") {
            let action = form_action(&text).ok_or("sign-in page without a form")?;
            url = url.join(&action).map_err(|_| "bad form action")?;
            method = Method::POST;
            body = Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("login", &plan.user)
                    .append_pair("password", &plan.password)
                    .finish(),
            );
            posted_login = true;
            continue;
        }
        return Err(format!("stuck on a 200 page at {}", short(&url)));
    }
    Err("too many redirects".into())
}

/// The URL without its query (codes and states are noise in error reports).
fn short(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let s = u.to_string();
    // Per-login ids in paths (`/interaction/<uid>`) would make every error unique.
    match s.find("/interaction/").or_else(|| s.find("/auth/")) {
        Some(i) => format!("{}/…", &s[..i + s[i + 1..].find('/').map_or(0, |j| j + 1)]),
        None => s,
    }
}

/// utime+stime of `pid` and its live descendants, plus what reaped children used (cutime,
/// cstime), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let mut stack = vec![(pid, true)];
    while let Some((p, root)) = stack.pop() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let get = |n: usize| f.get(n - 3).copied().unwrap_or(0);
        total += get(14) + get(15);
        if root {
            total += get(16) + get(17);
        }
        for child in children(p) {
            stack.push((child, false));
        }
    }
    total as f64 / tick
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Resident bytes of `pid` (from /proc/<pid>/statm).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn named_pids(args: &Args, key: &str) -> Result<Vec<(String, u32)>, String> {
    args.all(key)
        .into_iter()
        .map(|v| {
            let (name, pid) = v
                .split_once('=')
                .ok_or_else(|| format!("--{key} {v:?}: use name=PID"))?;
            let pid = pid.parse().map_err(|_| format!("--{key} {v:?}: bad PID"))?;
            Ok((name.to_owned(), pid))
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn main(args: &Args) -> Result<(), String> {
    let target = Url::parse(args.get("target").ok_or("--target is required")?)
        .map_err(|e| format!("--target: {e}"))?;
    let user = args.get("user").unwrap_or("alice").to_owned();
    let plan = Arc::new(Plan {
        target,
        password: args
            .get("password")
            .map_or_else(|| format!("{user}-pw"), str::to_owned),
        user,
        expect: args
            .get("expect-header")
            .map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                    .ok_or("--expect-header: use name=value")
            })
            .transpose()?,
    });
    let count: usize = args.num("count", 1)?;
    let concurrency: usize = args.num("concurrency", 1)?;
    let threads: usize = args.num("threads", 1)?;
    let max_seconds: f64 = args.num("max-seconds", 120.0)?;
    let cpus = named_pids(args, "cpu")?;
    let rsss = named_pids(args, "rss")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;

    if args.flag("print-cookie") {
        // One login; print the Cookie header a browser would send to the target.
        let jar = rt.block_on(login(&client, &plan))?;
        println!("{}", jar.header(&plan.target).unwrap_or_default());
        return Ok(());
    }

    // The driver's own CPU is reported too: it shares the machine with what it measures.
    let mut cpus = cpus;
    cpus.push(("driver".to_owned(), std::process::id()));
    let cpu_before: Vec<f64> = cpus.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let rss_before: Vec<u64> = rsss.iter().map(|(_, p)| rss_bytes(*p)).collect();
    let remaining = Arc::new(AtomicUsize::new(count));
    let errors: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs_f64(max_seconds);
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (client, plan, remaining, errors, latencies) = (
                client.clone(),
                plan.clone(),
                remaining.clone(),
                errors.clone(),
                latencies.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline
                    && remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let t = Instant::now();
                    match login(&client, &plan).await {
                        Ok(_) => mine.push(t.elapsed().as_secs_f64() * 1000.0),
                        Err(e) => {
                            if let Ok(mut map) = errors.lock() {
                                *map.entry(e).or_default() += 1;
                            }
                        }
                    }
                }
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    let ok = lat.len();
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    let failed: usize = errors.values().sum();
    let mut cpu = serde_json::Map::new();
    for ((name, pid), before) in cpus.iter().zip(&cpu_before) {
        let used = cpu_seconds(*pid) - before;
        cpu.insert(
            name.clone(),
            json!({
                "pid": pid,
                "cpu_seconds": used,
                "cpu_ms_per_login": if ok > 0 { used * 1000.0 / ok as f64 } else { 0.0 },
            }),
        );
    }
    let mut rss = serde_json::Map::new();
    for ((name, pid), before) in rsss.iter().zip(&rss_before) {
        let after = rss_bytes(*pid);
        rss.insert(
            name.clone(),
            json!({
                "pid": pid,
                "rss_before": before,
                "rss_after": after,
                "bytes_per_login": if ok > 0 { (after as f64 - *before as f64) / ok as f64 } else { 0.0 },
            }),
        );
    }
    let out = json!({
        "target": plan.target.as_str(),
        "requested": count,
        "concurrency": concurrency,
        "ok": ok,
        "failed": failed,
        "not_run": count - ok - failed,
        "elapsed_s": elapsed,
        "logins_per_s": ok as f64 / elapsed,
        "latency_ms_p50": percentile(&lat, 0.50),
        "latency_ms_p99": percentile(&lat, 0.99),
        "errors": errors,
        "cpu": cpu,
        "rss": rss,
    });
    println!("{out}");
    Ok(())
}

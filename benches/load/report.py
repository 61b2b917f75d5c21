#!/usr/bin/env python3
"""Turns the raw outputs of benches/load/run.sh into results.json and results.md.

usage: report.py RAW_DIR OUT_DIR
       report.py --wrk-line JSON | --login-line JSON     (one-line progress summaries)
"""

import json
import statistics
import sys
from pathlib import Path


def jsonl(path):
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def one_line(kind, text):
    """A one-line summary of one wrk or login-driver result, for the progress log."""
    r = json.loads(text)
    if kind == "--wrk-line":
        rps = r["requests"] / r["duration_us"] * 1e6
        return f"{rps:,.0f} req/s, p50 {r['p50_us'] / 1000:.2f} ms, p99 {r['p99_us'] / 1000:.2f} ms"
    cpu = ", ".join(f"{k} {v['cpu_ms_per_login']:.2f} ms" for k, v in r["cpu"].items())
    return (f"{r['ok']} ok, {r['failed']} failed, {r['logins_per_s']:,.0f} logins/s"
            + (f", CPU per login: {cpu}" if cpu else "")
            + (f", errors: {r['errors']}" if r["errors"] else ""))


def main():
    if sys.argv[1].startswith("--"):
        print(one_line(sys.argv[1], sys.argv[2]))
        return
    raw, out = Path(sys.argv[1]), Path(sys.argv[2])
    machine = json.loads((raw / "machine.json").read_text())

    # ------------------------------------------------------------ wrk
    order = ["upstream", "nginx", "apache", "sso-proxy"]
    runs = []
    for r in jsonl(raw / "wrk.jsonl"):
        w = r["wrk"]
        secs = w["duration_us"] / 1e6
        per_req = w["bytes"] / w["requests"] if w["requests"] else 0
        # Every response must be the 200 page measured in the checks: a redirect or an error
        # page has another size (wrk itself counts 3xx as success).
        same_size = abs(per_req - r["response_bytes"]) <= max(8, 0.02 * r["response_bytes"])
        # Non-2xx/3xx statuses and timeouts invalidate a run; a few socket errors (a server closing
        # a keep-alive connection) do not, but are reported.
        errors = w["status_errors"] + w["timeouts"]
        socket_errors = sum(w[k] for k in ("connect_errors", "read_errors", "write_errors"))
        runs.append({
            "phase": r.get("phase", "throughput"),
            "round": r["round"],
            "loadavg": r.get("loadavg"),
            "target": r["target"],
            "requests": w["requests"],
            "req_per_s": w["requests"] / secs,
            "p50_ms": w["p50_us"] / 1000,
            "p90_ms": w["p90_us"] / 1000,
            "p99_ms": w["p99_us"] / 1000,
            "mean_ms": w["mean_us"] / 1000,
            "errors": errors,
            "socket_errors": socket_errors,
            "bytes_per_response": per_req,
            "expected_bytes": r["response_bytes"],
            "all_200": same_size and errors == 0,
        })
    rounds = sorted({r["round"] for r in runs})
    by = {(r["phase"], r["round"], r["target"]): r for r in runs}
    per_round = []
    for n in rounds:
        s, ng, ap, up = (by.get(("throughput", n, t)) for t in ("sso-proxy", "nginx", "apache", "upstream"))
        ls, lng, lap, lup = (by.get(("latency", n, t)) for t in ("sso-proxy", "nginx", "apache", "upstream"))
        if not (s and ng and ap and up):
            continue
        row = {
            "round": n,
            "sso_over_nginx": s["req_per_s"] / ng["req_per_s"],
            "sso_over_apache": s["req_per_s"] / ap["req_per_s"],
            "saturated_p99_added_ms": {k: v["p99_ms"] - up["p99_ms"] for k, v in (("sso-proxy", s), ("nginx", ng), ("apache", ap))},
        }
        if ls and lng and lap and lup:
            row["p99_added_ms"] = {k: v["p99_ms"] - lup["p99_ms"] for k, v in (("sso-proxy", ls), ("nginx", lng), ("apache", lap))}
            row["p50_added_ms"] = {k: v["p50_ms"] - lup["p50_ms"] for k, v in (("sso-proxy", ls), ("nginx", lng), ("apache", lap))}
        per_round.append(row)
    wrk_summary = {}
    for phase in ("throughput", "latency"):
        for t in order:
            rs = [r for r in runs if r["target"] == t and r["phase"] == phase]
            if rs:
                wrk_summary.setdefault(phase, {})[t] = {
                    "req_per_s_median": median([r["req_per_s"] for r in rs]),
                    "req_per_s_rounds": [round(r["req_per_s"]) for r in rs],
                    "p50_ms_median": median([r["p50_ms"] for r in rs]),
                    "p99_ms_median": median([r["p99_ms"] for r in rs]),
                    "p99_ms_rounds": [round(r["p99_ms"], 2) for r in rs],
                    "all_200": all(r["all_200"] for r in rs),
                }

    # ------------------------------------------------------------ logins
    logins = jsonl(raw / "logins.jsonl")

    def aggregate(prefix):
        rs = [l["result"] for l in logins if l["label"].startswith(prefix) and l["result"]["cpu"]]
        if not rs:
            return None
        ok = sum(r["ok"] for r in rs)
        secs = sum(r["elapsed_s"] for r in rs)
        agg = {
            "runs": len(rs),
            "ok": ok,
            "failed": sum(r["failed"] for r in rs),
            "not_run": sum(r["not_run"] for r in rs),
            "concurrency": rs[0]["concurrency"],
            "elapsed_s": secs,
            "logins_per_s": ok / secs if secs else 0,
            "latency_ms_p50": median([r["latency_ms_p50"] for r in rs]),
            "latency_ms_p99": max(r["latency_ms_p99"] for r in rs),
            "errors": {},
        }
        for r in rs:
            for k, v in r["errors"].items():
                agg["errors"][k] = agg["errors"].get(k, 0) + v
        for who in rs[0]["cpu"]:
            cpu = sum(r["cpu"].get(who, {}).get("cpu_seconds", 0) for r in rs)
            agg[f"{who}_cpu_seconds"] = cpu
            agg[f"{who}_cpu_ms_per_login"] = cpu * 1000 / ok if ok else None
        rss = rs[-1].get("rss", {}).get("proxy")
        if rss:
            agg["proxy_rss_bytes_per_login"] = rss["bytes_per_login"]
            agg["proxy_rss_after"] = rss["rss_after"]
        return agg

    login_summary = {
        "sso-proxy/op": aggregate("sso-proxy/op"),
        "apache/op": aggregate("apache/op"),
        "sso-proxy/fast-op": aggregate("sso-proxy/fast-op"),
    }

    # ------------------------------------------------------------ memory
    memory = {m["variant"]: m for m in jsonl(raw / "memory.jsonl")}

    # ------------------------------------------------------------ targets
    def target(name, value, goal, ok, note=""):
        return {"target": name, "value": value, "goal": goal, "met": bool(ok), "note": note}

    targets = []
    r_ng = [p["sso_over_nginx"] for p in per_round]
    r_ap = [p["sso_over_apache"] for p in per_round]
    added = [p["p99_added_ms"]["sso-proxy"] for p in per_round if "p99_added_ms" in p]
    sat_added = [p["saturated_p99_added_ms"]["sso-proxy"] for p in per_round]
    rounds_txt = lambda xs, f="{:.2f}": ", ".join(f.format(x) for x in xs)
    if per_round:
        targets.append(target("req/s sso-proxy / nginx proxy_pass", f"{median(r_ng):.2f}x (rounds: {rounds_txt(r_ng)})",
                              ">= 1.0x", median(r_ng) >= 1.0))
        targets.append(target("req/s sso-proxy / Apache + mod_auth_openidc", f"{median(r_ap):.2f}x (rounds: {rounds_txt(r_ap)})",
                              ">= 4x", median(r_ap) >= 4.0))
    if added:
        targets.append(target(f"p99 added over direct upstream (-c{machine['settings'].get('lat_conns', '?')})",
                              f"{median(added):+.2f} ms (rounds: {rounds_txt(added, '{:+.2f}')})",
                              "<= 1 ms", median(added) <= 1.0))
    if sat_added:
        targets.append(target(f"p99 added over direct upstream, saturated (-c{machine['settings']['wrk_conns']})",
                              f"{median(sat_added):+.2f} ms (rounds: {rounds_txt(sat_added, '{:+.2f}')})",
                              "<= 1 ms", median(sat_added) <= 1.0,
                              "queueing at saturation: lower throughput means longer queues"))
    s, a, f = (login_summary[k] for k in ("sso-proxy/op", "apache/op", "sso-proxy/fast-op"))
    if s and a and s.get("proxy_cpu_ms_per_login") and a.get("proxy_cpu_ms_per_login"):
        ratio = s["proxy_cpu_ms_per_login"] / a["proxy_cpu_ms_per_login"]
        targets.append(target("proxy CPU per login, sso-proxy / mod_auth_openidc",
                              f"{ratio:.2f}x ({s['proxy_cpu_ms_per_login']:.2f} vs {a['proxy_cpu_ms_per_login']:.2f} ms)",
                              "<= 0.25x", ratio <= 0.25))
    if f:
        targets.append(target("logins/s, sso-proxy against the fast OP", f"{f['logins_per_s']:.0f}/s",
                              ">= 2000/s", f["logins_per_s"] >= 2000 and f["failed"] == 0))
    for v, m in memory.items():
        targets.append(target(f"RSS per memory-store session ({v})", f"{m['bytes_per_session']:.0f} B",
                              "<= 2048 B", m["bytes_per_session"] <= 2048,
                              f"id_token {m['id_token_len']} B, access_token {m['access_token_len']} B"))
    valid = all(w["all_200"] for ph in wrk_summary.values() for w in ph.values())

    results = {
        "machine": machine,
        "wrk": {"runs": runs, "per_round": per_round, "summary": wrk_summary, "all_responses_200": valid},
        "logins": login_summary,
        "login_runs": logins,
        "memory": memory,
        "targets": targets,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    # ------------------------------------------------------------ markdown
    st = machine["settings"]
    md = []
    md.append("# sso-proxy load benchmark\n")
    md.append(f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
              f"{machine['mem_total_kb'] / 1048576:.1f} GiB RAM, Linux {machine['kernel']}; "
              f"load average (1/5/15 min) {machine.get('loadavg_start', '?')} at the start, {machine['loadavg_end']} at the end "
              f"(other work on the machine shows up here). "
              f"sso-proxy {machine['versions']['sso_proxy_commit']}, nginx {machine['versions']['nginx']}, "
              f"Apache {machine['versions']['apache']} + mod_auth_openidc {machine['versions']['mod_auth_openidc']}, "
              f"wrk {machine['versions']['wrk']}, node {machine['versions']['node']}.\n")
    names = {"upstream": "upstream (nginx static, direct)", "nginx": "nginx proxy_pass (no auth)",
             "apache": "Apache + mod_auth_openidc (logged in)", "sso-proxy": "sso-proxy (logged in, memory store)"}
    for phase, title in (("throughput", f"## Proxied requests, throughput (wrk -t{st['wrk_threads']} -c{st['wrk_conns']} -d{st['duration_s']}s)"),
                         ("latency", f"## Proxied requests, latency at light load (wrk -t{st['wrk_threads']} -c{st.get('lat_conns')} -d{st.get('lat_duration_s')}s)")):
        if phase not in wrk_summary:
            continue
        md.append(f"{title}\n")
        md.append(f"{st['rounds']} interleaved rounds (each round: every target at -c{st['wrk_conns']}, then every target at "
                  f"-c{st.get('lat_conns')}); medians over the rounds.\n")
        md.append("| target | req/s | p50 ms | p99 ms | req/s per round | p99 ms per round | all 200 |")
        md.append("|---|---:|---:|---:|---|---|---|")
        for t, w in wrk_summary[phase].items():
            md.append(f"| {names.get(t, t)} | {fmt(w['req_per_s_median'])} | {w['p50_ms_median']:.2f} | "
                      f"{w['p99_ms_median']:.2f} | {', '.join(f'{x:,}' for x in w['req_per_s_rounds'])} | "
                      f"{', '.join(f'{x:.2f}' for x in w['p99_ms_rounds'])} | {'yes' if w['all_200'] else 'NO'} |")
        md.append("")
    md.append("Per round (ratios from the throughput runs; added latency = target minus direct upstream, same round):\n")
    md.append("| round | sso-proxy / nginx | sso-proxy / Apache | p99 added (light load): sso-proxy / nginx / Apache | p50 added (light load): sso-proxy / nginx / Apache |")
    md.append("|---:|---:|---:|---|---|")
    for p in per_round:
        a99 = p.get("p99_added_ms", {})
        a50 = p.get("p50_added_ms", {})
        trio = lambda d: " / ".join(f"{d[k]:+.2f}" for k in ("sso-proxy", "nginx", "apache")) + " ms" if d else "n/a"
        md.append(f"| {p['round']} | {p['sso_over_nginx']:.2f}x | {p['sso_over_apache']:.2f}x | {trio(a99)} | {trio(a50)} |")
    md.append("")
    md.append("## Logins (fresh cookie jar each, verified by a 200 with the identity upstream)\n")
    md.append("| proxy / OP | logins ok | failed | concurrency | logins/s | p50 ms | p99 ms | proxy CPU ms/login | OP CPU ms/login | driver CPU ms/login |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"sso-proxy/op": "sso-proxy / oidc-provider", "apache/op": "mod_auth_openidc / oidc-provider",
              "sso-proxy/fast-op": f"sso-proxy / fast Rust OP ({st['fast_alg']})"}
    for k, l in login_summary.items():
        if not l:
            continue
        md.append(f"| {labels[k]} | {l['ok']:,} | {l['failed']} | {l['concurrency']} | {l['logins_per_s']:,.0f} | "
                  f"{l['latency_ms_p50']:.1f} | {l['latency_ms_p99']:.1f} | {fmt(l.get('proxy_cpu_ms_per_login'), 2)} | "
                  f"{fmt(l.get('op_cpu_ms_per_login'), 2)} | {fmt(l.get('driver_cpu_ms_per_login'), 2)} |")
    errs = {k: l["errors"] for k, l in login_summary.items() if l and l["errors"]}
    if errs:
        md.append("")
        md.append("Login failures: " + "; ".join(f"{k}: {v}" for k, v in errs.items()))
    if f and f.get("proxy_rss_bytes_per_login") is not None:
        md.append("")
        md.append(f"sso-proxy RSS growth during the fast-OP run: {f['proxy_rss_bytes_per_login']:.0f} B per login "
                  f"(RSS {f['proxy_rss_after'] / 1048576:.1f} MiB after it; sessions plus the used-state memory).")
    md.append("")
    md.append(f"## Memory per session ({st['sessions']:,} sessions created through the memory store API)\n")
    md.append("| variant | bytes/session | stored tokens |")
    md.append("|---|---:|---|")
    what = {"default": "none (default: no idp_logout, pass_authorization, pass_access_token)",
            "id_token": "ID token (idp_logout or pass_authorization)",
            "tokens": "ID token + JWT access token (plus pass_access_token)"}
    for v, m in memory.items():
        toks = [f"id_token {m['id_token_len']} B"] if m["id_token_len"] else []
        if m["access_token_len"]:
            toks.append(f"access_token {m['access_token_len']} B")
        md.append(f"| {what.get(v, v)} | {m['bytes_per_session']:,.0f} | {', '.join(toks) or '-'} |")
    md.append("")
    md.append("## Targets (issue 7)\n")
    md.append("| target | goal | measured | met |")
    md.append("|---|---|---|---|")
    for t in targets:
        md.append(f"| {t['target']} | {t['goal']} | {t['value']} | {'yes' if t['met'] else '**no**'} |")
    if not valid:
        md.append("\n**Warning: some wrk responses were not the 200 page; the request figures are invalid.**")
    (out / "results.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()

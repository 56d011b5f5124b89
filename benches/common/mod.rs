//! What the benchmarks share: the access log lines they all parse.

/// 1000 combined-format access lines: three user agents, some 404s, every
/// field filled.
pub fn lines() -> Vec<String> {
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "curl/8.4.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ];
    (0..1000)
        .map(|i| {
            format!(
                "10.{}.{}.{} - - [25/Nov/2026:10:{:02}:{:02} +0100] \"GET /static/img/{i}.png?v={i} HTTP/1.1\" {} {} \"https://example.com/page/{}\" \"{}\"",
                i % 200,
                i % 7,
                i % 250,
                i % 60,
                (i * 7) % 60,
                if i % 10 == 0 { 404 } else { 200 },
                1000 + i * 13,
                i % 17,
                agents[i % agents.len()]
            )
        })
        .collect()
}

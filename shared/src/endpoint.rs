//! Which service endpoints the router and the backend may be pointed at: HTTPS to any host, or
//! plain HTTP to a loopback host only (tests and local runs). One rule for every URL a setting
//! gives (the JWKS, the quarantine queue), judged on the parsed URL so that
//! `http://localhost@evil.example/` (user-info) cannot pass for loopback.

/// Whether `url` is an `https://` URL with a host and no user-info, or an `http://` URL to a
/// loopback host (`localhost`, `127.0.0.0/8`, `[::1]`).
pub fn is_allowed(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url.trim()) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() || !url.has_host() {
        return false;
    }
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_allowed;

    #[test]
    fn https_anywhere_http_on_loopback_only() {
        for ok in [
            "https://sqs.us-east-1.amazonaws.com/1/q",
            "http://127.0.0.1:4566/1/q",
            "http://localhost/q",
            "http://[::1]:9/q",
        ] {
            assert!(is_allowed(ok), "{ok}");
        }
        for bad in [
            "http://sqs.us-east-1.amazonaws.com/1/q",
            "http://localhost@evil.example/",
            "https://user:pw@example.com/",
            "http://localhost.evil.com/",
            "ftp://127.0.0.1/",
            "quarantine",
            "",
        ] {
            assert!(!is_allowed(bad), "{bad}");
        }
    }
}

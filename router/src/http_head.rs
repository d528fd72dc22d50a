//! Sans-IO reading of the first HTTP/1.1 request on a connection: enough to route it (method,
//! target, headers, and the body for an Inform), never more than a cap. The router forwards
//! the bytes it read unchanged, so framing (Content-Length or chunked) is decoded here only to
//! know where the request ends and what the Inform says.

#[derive(Debug, PartialEq, Eq)]
pub struct FirstRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lower-cased, values as sent (non-UTF-8 values dropped).
    pub headers: Vec<(String, String)>,
    /// The body with chunked framing removed.
    pub body: Vec<u8>,
}

impl FirstRequest {
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("request larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed http request: {0}")]
    Malformed(String),
}

const MAX_HEADERS: usize = 64;

/// Parses the request at the start of `buf`: `Ok(None)` until it is complete.
pub fn parse_first_request(buf: &[u8], max: usize) -> Result<Option<FirstRequest>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max {
                Err(HeadError::TooLarge(max))
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter_map(|h| {
            std::str::from_utf8(h.value)
                .ok()
                .map(|v| (h.name.to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let rest = &buf[head_len..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None if buf.len() >= max => return Err(HeadError::TooLarge(max)),
            None => return Ok(None),
        }
    } else {
        let length = match find("content-length") {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| HeadError::Malformed(format!("content-length {v:?}")))?,
            None => 0,
        };
        if head_len.saturating_add(length) > max {
            return Err(HeadError::TooLarge(max));
        }
        if rest.len() < length {
            return Ok(None);
        }
        rest[..length].to_vec()
    };
    Ok(Some(FirstRequest {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
        body,
    }))
}

/// A complete chunked body, or `None` while chunks are missing.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, HeadError> {
    let mut body = Vec::new();
    loop {
        let (header, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HeadError::Malformed("bad chunk size".into())),
        };
        let size =
            usize::try_from(size).map_err(|_| HeadError::Malformed("chunk too big".into()))?;
        rest = &rest[header..];
        if size == 0 {
            // Trailers end with an empty line; we need only the body.
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The `eid` of a USP WebSocket handshake: the `?eid=` query parameter (TR-369 R-WS.10b), or
/// the older `Sec-WebSocket-Extensions: bbf-usp-protocol; eid="…"` header.
pub fn usp_endpoint_id(request: &FirstRequest) -> Option<String> {
    let from_query = request.target.split_once('?').and_then(|(_, query)| {
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "eid").then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    });
    from_query.filter(|e| !e.is_empty()).or_else(|| {
        request
            .header("sec-websocket-extensions")
            .flat_map(|v| v.split([';', ',']))
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim() == "eid")
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            .filter(|e| !e.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_bodies_are_read_whole() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_first_request(&raw[..raw.len() - 1], 1024), Ok(None));
        let r = parse_first_request(raw, 1024).unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.body.as_slice()),
            ("POST", &b"hello"[..])
        );
    }

    #[test]
    fn chunked_bodies_are_dechunked() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_first_request(&raw[..40], 1024), Ok(None));
        let r = parse_first_request(raw, 1024).unwrap().unwrap();
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn empty_posts_and_caps() {
        let r = parse_first_request(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert!(r.body.is_empty());
        let big = b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n";
        assert_eq!(
            parse_first_request(big, 1024),
            Err(HeadError::TooLarge(1024))
        );
        assert!(matches!(
            parse_first_request(b"\x00\x01garbage\r\n\r\n", 1024),
            Err(HeadError::Malformed(_))
        ));
        let endless = vec![b'a'; 2048];
        assert!(parse_first_request(&endless, 1024).is_err());
    }

    #[test]
    fn usp_endpoint_ids_from_query_or_extension_header() {
        let q = parse_first_request(
            b"GET /usp?eid=os%3A%3A00D09E-A1&x=1 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(usp_endpoint_id(&q).as_deref(), Some("os::00D09E-A1"));
        let h = parse_first_request(
            b"GET /usp HTTP/1.1\r\nSec-WebSocket-Extensions: bbf-usp-protocol; eid=\"proto::a\"\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(usp_endpoint_id(&h).as_deref(), Some("proto::a"));
        let none = parse_first_request(b"GET /usp HTTP/1.1\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(usp_endpoint_id(&none), None);
    }
}

//! STOMP 1.2 frames for the USP STOMP MTP (TR-369 §R-STOMP), sans-IO: a streaming decoder that
//! takes bytes as they arrive from the broker and yields frames and heart-beats, and an encoder.
//!
//! A frame is `COMMAND EOL *(header EOL) EOL body NUL`, EOL being LF or CR LF. A body with a
//! `content-length` header is read by length (USP Records are binary and may hold NUL);
//! otherwise it ends at the first NUL. Header values are escaped (`\r \n \c \\`) except in
//! CONNECT and CONNECTED frames. Between frames, bare EOLs are heart-beats. Input from the
//! network is bounded: the decoder never buffers more than its frame cap and never panics.

use std::collections::VecDeque;

/// `content-type` of a USP Record in a STOMP frame (TR-369 R-STOMP.21).
pub const USP_CONTENT_TYPE: &str = "application/vnd.bbf.usp.msg";
/// The header naming where the receiver answers (TR-369 R-STOMP.23).
pub const REPLY_TO_DEST: &str = "reply-to-dest";
/// The header with which a STOMP client names its USP endpoint id in CONNECT (TR-369).
pub const ENDPOINT_ID: &str = "endpoint-id";
/// The header in CONNECTED that tells an endpoint which destination to subscribe to.
pub const SUBSCRIBE_DEST: &str = "subscribe-dest";

const MAX_HEADERS: usize = 64;
const MAX_HEADER_LINE: usize = 8 * 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StompError {
    #[error("stomp frame exceeds the {max}-byte cap")]
    TooLarge { max: usize },
    #[error("stomp frame has more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("stomp header line is malformed: {0}")]
    BadHeader(String),
    #[error("stomp command is not text")]
    BadCommand,
    #[error("stomp content-length {0:?} is not a number")]
    BadContentLength(String),
    #[error("stomp body is not followed by NUL")]
    MissingNul,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub command: String,
    /// In order; a repeated header's first value is the one that counts (STOMP 1.2).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn new(command: &str) -> Self {
        Self {
            command: command.into(),
            ..Default::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn escaped(&self) -> bool {
        !matches!(self.command.as_str(), "CONNECT" | "CONNECTED" | "STOMP")
    }

    /// The frame on the wire; a body always carries its `content-length`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.body.len());
        out.extend_from_slice(self.command.as_bytes());
        out.push(b'\n');
        let escape = self.escaped();
        let mut has_length = false;
        for (k, v) in &self.headers {
            has_length |= k == "content-length";
            push_header_part(&mut out, k, escape);
            out.push(b':');
            push_header_part(&mut out, v, escape);
            out.push(b'\n');
        }
        if !self.body.is_empty() && !has_length {
            out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
        out
    }
}

fn push_header_part(out: &mut Vec<u8>, s: &str, escape: bool) {
    if !escape {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b':' => out.extend_from_slice(b"\\c"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            other => out.push(other),
        }
    }
}

fn unescape(s: &str) -> Result<String, StompError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // STOMP 1.2: any other escape is a fatal protocol error.
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            other => {
                return Err(StompError::BadHeader(format!(
                    "undefined escape \\{}",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Frame(Frame),
    /// A bare EOL between frames: the peer is alive.
    Heartbeat,
}

/// Buffers bytes from the broker and yields what they hold.
#[derive(Debug)]
pub struct Decoder {
    buf: VecDeque<u8>,
    max_frame: usize,
}

impl Decoder {
    /// `max_frame` caps one frame, headers and body (the USP record cap plus headers).
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            max_frame,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }

    /// The next complete frame or heart-beat, `Ok(None)` until more bytes arrive. After an
    /// error the connection must be dropped (the stream has no way to resynchronise).
    pub fn next_event(&mut self) -> Result<Option<Event>, StompError> {
        match self.buf.front() {
            None => return Ok(None),
            Some(b'\n') => {
                self.buf.pop_front();
                return Ok(Some(Event::Heartbeat));
            }
            Some(b'\r') => {
                return match self.buf.get(1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        self.buf.drain(..2);
                        Ok(Some(Event::Heartbeat))
                    }
                    Some(_) => Err(StompError::BadCommand),
                };
            }
            Some(_) => {}
        }
        let bytes = self.buf.make_contiguous();
        let Some((frame, used)) = parse_frame(bytes, self.max_frame)? else {
            if self.buf.len() > self.max_frame {
                return Err(StompError::TooLarge {
                    max: self.max_frame,
                });
            }
            return Ok(None);
        };
        self.buf.drain(..used);
        Ok(Some(Event::Frame(frame)))
    }
}

/// One line ending at LF (a CR before it dropped), and the offset after it.
fn line(bytes: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rel = bytes.get(from..)?.iter().position(|&b| b == b'\n')?;
    let mut text = &bytes[from..from + rel];
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    Some((text, from + rel + 1))
}

fn parse_frame(bytes: &[u8], max: usize) -> Result<Option<(Frame, usize)>, StompError> {
    let Some((command, mut at)) = line(bytes, 0) else {
        if bytes.len() > MAX_HEADER_LINE {
            return Err(StompError::BadCommand);
        }
        return Ok(None);
    };
    let command = std::str::from_utf8(command)
        .ok()
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or(StompError::BadCommand)?;
    let mut frame = Frame::new(command);
    let escaped = frame.escaped();
    loop {
        let Some((header, next)) = line(bytes, at) else {
            if bytes.len() - at > MAX_HEADER_LINE {
                return Err(StompError::BadHeader("header line too long".into()));
            }
            return Ok(None);
        };
        at = next;
        if header.is_empty() {
            break;
        }
        if header.len() > MAX_HEADER_LINE {
            return Err(StompError::BadHeader("header line too long".into()));
        }
        if frame.headers.len() >= MAX_HEADERS {
            return Err(StompError::TooManyHeaders);
        }
        let text =
            std::str::from_utf8(header).map_err(|_| StompError::BadHeader("not UTF-8".into()))?;
        let (k, v) = text
            .split_once(':')
            .ok_or_else(|| StompError::BadHeader(text.chars().take(64).collect()))?;
        let (k, v) = if escaped {
            (unescape(k)?, unescape(v)?)
        } else {
            (k.to_owned(), v.to_owned())
        };
        frame.headers.push((k, v));
    }
    let body_end = match frame.get("content-length") {
        Some(len) => {
            let len: usize = len
                .trim()
                .parse()
                .map_err(|_| StompError::BadContentLength(len.chars().take(32).collect()))?;
            if len > max {
                return Err(StompError::TooLarge { max });
            }
            let end = at + len;
            if bytes.len() <= end {
                return Ok(None);
            }
            if bytes[end] != 0 {
                return Err(StompError::MissingNul);
            }
            end
        }
        None => match bytes[at..].iter().position(|&b| b == 0) {
            Some(rel) => at + rel,
            None => return Ok(None),
        },
    };
    if body_end + 1 > max {
        return Err(StompError::TooLarge { max });
    }
    frame.body = bytes[at..body_end].to_vec();
    Ok(Some((frame, body_end + 1)))
}

/// A SEND frame carrying one USP Record to `destination`, with the USP content type and the
/// destination where the receiver answers (TR-369 STOMP binding).
pub fn usp_send(destination: &str, reply_to: &str, record: Vec<u8>) -> Vec<u8> {
    Frame::new("SEND")
        .header("destination", destination)
        .header("content-type", USP_CONTENT_TYPE)
        .header(REPLY_TO_DEST, reply_to)
        .with_body(record)
        .encode()
}

/// Heart-beat intervals agreed in CONNECT/CONNECTED (`heart-beat: cx,cy`), in ms: how often
/// we must send, and how long the peer may stay silent. Zero means none.
pub fn heartbeats(ours: (u64, u64), theirs: Option<&str>) -> (u64, u64) {
    let (their_send, their_want) = theirs
        .and_then(|h| h.split_once(','))
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .unwrap_or((0u64, 0u64));
    let send = if ours.0 == 0 || their_want == 0 {
        0
    } else {
        ours.0.max(their_want)
    };
    let expect = if ours.1 == 0 || their_send == 0 {
        0
    } else {
        ours.1.max(their_send)
    };
    (send, expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Event>, StompError> {
        let mut d = Decoder::new(1 << 20);
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(e) = d.next_event()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn a_binary_usp_record_round_trips_with_its_length() {
        let record = vec![0x0a, 0x03, 0x00, b'\n', 0xff, 0x00];
        let frame = Frame::new("SEND")
            .header("destination", "/queue/agent:1")
            .header("content-type", USP_CONTENT_TYPE)
            .header(REPLY_TO_DEST, "/queue/controller\\x")
            .with_body(record.clone());
        let wire = frame.encode();
        // The colon and backslash in values travel escaped.
        let text = String::from_utf8_lossy(&wire);
        assert!(text.contains("destination:/queue/agent\\c1"), "{text}");
        assert!(text.contains("content-length:6"), "{text}");
        let got = decode_all(&wire).unwrap();
        assert_eq!(got.len(), 1);
        let Event::Frame(decoded) = &got[0] else {
            panic!()
        };
        assert_eq!(decoded.body, record);
        assert_eq!(decoded.get("destination"), Some("/queue/agent:1"));
        assert_eq!(decoded.get(REPLY_TO_DEST), Some("/queue/controller\\x"));
    }

    #[test]
    fn frames_split_anywhere_heartbeats_and_crlf_are_understood() {
        let mut wire = b"\n\r\n".to_vec();
        wire.extend(b"CONNECTED\r\nversion:1.2\r\nheart-beat:0,30000\r\n\r\n\0");
        wire.extend(
            Frame::new("MESSAGE")
                .header("subscription", "0")
                .with_body(b"ab".to_vec())
                .encode(),
        );
        wire.push(b'\n');
        let mut d = Decoder::new(1024);
        let mut events = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(e) = d.next_event().unwrap() {
                events.push(e);
            }
        }
        assert_eq!(events[0], Event::Heartbeat);
        assert_eq!(events[1], Event::Heartbeat);
        let Event::Frame(connected) = &events[2] else {
            panic!("{events:?}")
        };
        assert_eq!(connected.command, "CONNECTED");
        assert_eq!(connected.get("heart-beat"), Some("0,30000"));
        assert!(matches!(&events[3], Event::Frame(f) if f.body == b"ab"));
        assert_eq!(events[4], Event::Heartbeat);
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn a_body_without_length_ends_at_nul_and_the_first_repeated_header_counts() {
        let got = decode_all(b"ERROR\nmessage:first\nmessage:second\n\nbad thing\0").unwrap();
        let Event::Frame(f) = &got[0] else { panic!() };
        assert_eq!(f.get("message"), Some("first"));
        assert_eq!(f.body, b"bad thing");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic_nor_unbounded_memory() {
        assert_eq!(decode_all(b"send\n\n\0"), Err(StompError::BadCommand));
        assert!(matches!(
            decode_all(b"SEND\nnocolon\n\n\0"),
            Err(StompError::BadHeader(_))
        ));
        assert!(matches!(
            decode_all(b"SEND\nk:\\t\n\n\0"),
            Err(StompError::BadHeader(_))
        ));
        assert!(matches!(
            decode_all(b"SEND\ncontent-length:x\n\n\0"),
            Err(StompError::BadContentLength(_))
        ));
        assert_eq!(
            decode_all(b"SEND\ncontent-length:2\n\nabc\0"),
            Err(StompError::MissingNul)
        );
        let mut d = Decoder::new(100);
        d.push(b"SEND\ncontent-length:1000000\n\n");
        assert_eq!(d.next_event(), Err(StompError::TooLarge { max: 100 }));
        let mut d = Decoder::new(100);
        d.push(b"SEND\n\n");
        d.push(&[b'x'; 200]);
        assert_eq!(d.next_event(), Err(StompError::TooLarge { max: 100 }));
        let many: String = (0..100).map(|i| format!("h{i}:v\n")).collect();
        assert_eq!(
            decode_all(format!("SEND\n{many}\n\0").as_bytes()),
            Err(StompError::TooManyHeaders)
        );
    }

    #[test]
    fn heartbeats_follow_stomp_negotiation() {
        assert_eq!(heartbeats((10_000, 10_000), Some("0,30000")), (30_000, 0));
        assert_eq!(
            heartbeats((10_000, 10_000), Some("5000,5000")),
            (10_000, 10_000)
        );
        assert_eq!(heartbeats((0, 0), Some("5000,5000")), (0, 0));
        assert_eq!(heartbeats((10_000, 10_000), None), (0, 0));
    }
}

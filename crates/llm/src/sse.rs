//! A Server-Sent Events decoder that works on raw bytes as they arrive.
//!
//! Network reads split the stream anywhere: inside a line, between `\r` and `\n`, inside a
//! multi-byte UTF-8 character. Lines are cut at the ASCII line-end bytes first and decoded only
//! when complete, so a character split across reads is reassembled before it is decoded. The
//! field rules follow the WHATWG EventSource parser (`event`, `data`, comments, one optional space
//! after the colon, a blank line dispatches).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any (OpenAI streams have none; Anthropic names every event).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Longest line accepted: a guard against a server that never ends a line.
const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; complete events are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(out);
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE {
                        return Err(format!("an event stream line exceeds {MAX_LINE} bytes"));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// The stream ended. A last event without its closing blank line is still delivered: the
    /// spec would drop it, but servers (and recorded fixtures) do end that way, and the adapters
    /// decide for themselves whether the answer was complete.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter only to reconnecting browsers.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            decoder.push(&bytes[start..cut], &mut out).unwrap();
            start = cut;
        }
        decoder.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let text = "\u{feff}: comment\nevent: ping\ndata: {\"type\": \"ping\"}\n\ndata:a\ndata: b\nid: 7\nretry: 10\n\nevent: lonely\n\ndata\n\n";
        let events = decode_in_pieces(text.as_bytes(), &[]);
        assert_eq!(
            events,
            vec![
                ev(Some("ping"), "{\"type\": \"ping\"}"),
                ev(None, "a\nb"),
                ev(None, ""),
            ]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events_even_inside_utf8_and_crlf() {
        let text = "event: content_block_delta\r\ndata: {\"text\":\"Grüße 👋 — °C\"}\r\n\r\ndata: zwei\rdata: drei\r\rdata: [DONE]\n\n";
        let bytes = text.as_bytes();
        let whole = decode_in_pieces(bytes, &[]);
        assert_eq!(
            whole,
            vec![
                ev(Some("content_block_delta"), "{\"text\":\"Grüße 👋 — °C\"}"),
                ev(None, "zwei\ndrei"),
                ev(None, "[DONE]"),
            ]
        );
        for cut in 1..bytes.len() {
            assert_eq!(
                decode_in_pieces(bytes, &[cut]),
                whole,
                "split at byte {cut}"
            );
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(decode_in_pieces(bytes, &every_byte), whole);
    }

    #[test]
    fn a_final_event_without_blank_line_is_delivered() {
        let events = decode_in_pieces(
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}",
            &[5],
        );
        assert_eq!(
            events,
            vec![ev(Some("message_stop"), "{\"type\":\"message_stop\"}")]
        );
    }
}

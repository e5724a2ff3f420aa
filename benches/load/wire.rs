//! The load generator's HTTP/1.1 client: one keep-alive connection per worker, each request written as
//! prepared bytes and each response read by its `Content-Length`. A general client (connection pool,
//! header maps, redirect and body machinery) cost a fifth of this two-core machine during the activity
//! scenarios, taken from the service it measures; the reference it is compared with (pgbench) is as lean
//! as this.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request: method, path, bearer token, extra headers and a JSON body.
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub token: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: "GET",
            path: path.into(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn post(path: impl Into<String>, token: &str, body: String) -> Request {
        Request {
            method: "POST",
            path: path.into(),
            token: Some(token.to_string()),
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Request {
        self.headers.push((name, value));
        self
    }

    fn write_to(&self, out: &mut Vec<u8>, host: &str) {
        use std::io::Write;
        out.clear();
        let _ = write!(out, "{} {} HTTP/1.1\r\nhost: {host}\r\n", self.method, self.path);
        if let Some(token) = &self.token {
            let _ = write!(out, "authorization: Bearer {token}\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        match &self.body {
            Some(body) => {
                let _ = write!(
                    out,
                    "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            None => out.extend_from_slice(b"\r\n"),
        }
    }
}

/// A response's status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A keep-alive connection to the service; reopened after the server closed it.
pub struct Connection {
    host: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    input: Vec<u8>,
}

impl Connection {
    /// `host`: `127.0.0.1:port`.
    pub fn new(host: &str) -> Connection {
        Connection {
            host: host.to_string(),
            stream: None,
            out: Vec::with_capacity(2048),
            input: Vec::with_capacity(8192),
        }
    }

    /// Sends `request` and reads its response. A connection that fails is dropped (the next request
    /// opens another) and the error returned: the request is not sent again.
    pub async fn send(&mut self, request: &Request) -> io::Result<Response> {
        let result = self.exchange(request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, request: &Request) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.host).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        request.write_to(&mut self.out, &self.host);
        stream.write_all(&self.out).await?;
        self.input.clear();
        loop {
            if let Some(response) = complete_response(&self.input)? {
                return Ok(response);
            }
            if stream.read_buf(&mut self.input).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
        }
    }
}

/// The response at the start of `input`, once all of it has arrived.
fn complete_response(input: &[u8]) -> io::Result<Option<Response>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head = match parsed.parse(input).map_err(|e| invalid(&e.to_string()))? {
        httparse::Status::Complete(head) => head,
        httparse::Status::Partial => return Ok(None),
    };
    let length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .ok_or_else(|| invalid("response without a content-length"))?;
    let status = parsed.code.unwrap_or(0);
    if input.len() < head + length {
        return Ok(None);
    }
    Ok(Some(Response {
        status,
        body: input[head..head + length].to_vec(),
    }))
}

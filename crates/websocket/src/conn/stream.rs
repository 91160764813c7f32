//! [`WsConn`] as a `Stream` of messages and a `Sink` for them: reading
//! answers the peer's pings and collects the heartbeat's replies, a read
//! left waiting runs the lent heartbeat and the read timeout, and a failed
//! read or send marks the connection broken.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::{self, Message};

use super::WsConn;
use crate::error::WsError;

impl Stream for WsConn {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(msg) = this.greeting.pop_front() {
            this.greeting_bytes -= msg.len();
            this.read_timeout.sleep = None;
            return Poll::Ready(Some(Ok(msg)));
        }
        loop {
            this.reading = true;
            let item = match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => {
                    if let Some(e) = this.beat_while_lent(cx) {
                        this.reading = false;
                        return Poll::Ready(Some(Err(e)));
                    }
                    if let Some(after) = this.read_timeout.expired(cx) {
                        let why = WsError::ReadTimedOut { after };
                        let error = io::Error::new(io::ErrorKind::TimedOut, why.to_string());
                        this.fail(why);
                        this.reading = false;
                        return Poll::Ready(Some(Err(tungstenite::Error::Io(error))));
                    }
                    return Poll::Pending;
                }
            };
            this.reading = false;
            if let Some(lent) = &mut this.while_lent {
                lent.heard();
            }
            if let Some(Ok(msg)) = &item
                && let Some(answer) = this.heartbeat.answer(msg)
            {
                match this.send_answer(answer, cx) {
                    Ok(()) => continue,
                    Err(e) => {
                        this.broken = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            match &item {
                Some(Ok(msg)) if this.owed > 0 && this.heartbeat.is_reply(msg) => {
                    this.owed -= 1;
                    continue;
                }
                Some(Ok(Message::Close(frame))) => this.fail(WsError::Closed(frame.clone())),
                Some(Ok(_)) => {}
                Some(Err(_)) => this.broken = true,
                None => this.fail(WsError::Ended),
            }
            this.read_timeout.sleep = None;
            return Poll::Ready(item);
        }
    }
}

/// A failed send makes the connection broken.
fn mark<T>(
    conn: &mut WsConn,
    r: Poll<Result<T, tungstenite::Error>>,
) -> Poll<Result<T, tungstenite::Error>> {
    if let Poll::Ready(Err(_)) = &r {
        conn.broken = true;
    }
    r
}

impl Sink<Message> for WsConn {
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.ws).poll_ready(cx);
        mark(this, r)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.ws).start_send(item);
        if r.is_err() {
            this.broken = true;
        }
        this.fresh = false;
        this.unflushed = true;
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.ws).poll_flush(cx);
        if r.is_ready() {
            this.unflushed = false;
        }
        mark(this, r)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        // Closed from this side: never lent again.
        this.broken = true;
        Pin::new(&mut this.ws).poll_close(cx)
    }
}

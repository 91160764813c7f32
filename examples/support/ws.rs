//! A WebSocket echo server (tokio-tungstenite) on 127.0.0.1, plain or over
//! TLS, and one echo round trip over a WebSocket.

use std::net::SocketAddr;

use connpool::managers::websocket::tungstenite::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Accepted, BoxError, PAYLOAD};

/// A WebSocket server echoing every data message; over TLS with `tls`.
pub async fn ws_server(tls: Option<TlsAcceptor>) -> std::io::Result<(SocketAddr, Accepted)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Accepted::default();
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.add();
            let _ = socket.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => echo(socket).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            echo(stream).await;
                        }
                    }
                }
            });
        }
    });
    Ok((addr, accepted))
}

async fn echo(io: impl AsyncRead + AsyncWrite + Unpin) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(io).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// One echo round trip: 64 bytes out in a binary message, the same back.
pub async fn ws_round_trip<S>(ws: &mut S) -> Result<(), BoxError>
where
    S: Sink<Message, Error = connpool::managers::websocket::tungstenite::Error>
        + Stream<Item = Result<Message, connpool::managers::websocket::tungstenite::Error>>
        + Unpin,
{
    ws.send(Message::binary(&PAYLOAD[..])).await?;
    loop {
        match ws.next().await.ok_or("the WebSocket ended")?? {
            Message::Binary(data) if data[..] == PAYLOAD[..] => return Ok(()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Err(format!("echo: unexpected {other:?}").into()),
        }
    }
}

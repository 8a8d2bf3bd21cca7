//! Sending and receiving control messages, with at most one fd each.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::protocol::{Message, MESSAGE_SIZE};
use crate::Error;

pub(crate) fn send(
    socket: BorrowedFd<'_>,
    message: &Message,
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), Error> {
    let bytes = message.encode();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    tracing::trace!(kind = message.kind(), "memif send");
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one message (blocking unless the socket is non-blocking).
/// `Ok(None)` means the peer closed the connection.
/// How long a handshake waits for each answer: a peer that accepts and
/// then says nothing must not hang us.
pub(crate) const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Bounds every blocking send and receive on the control socket.
pub(crate) fn set_timeouts(socket: BorrowedFd<'_>) -> Result<(), Error> {
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    set_socket_timeout(socket, Timeout::Recv, Some(ANSWER_TIMEOUT))?;
    set_socket_timeout(socket, Timeout::Send, Some(ANSWER_TIMEOUT))?;
    Ok(())
}

pub(crate) fn recv(socket: BorrowedFd<'_>) -> Result<Option<(Message, Option<OwnedFd>)>, Error> {
    let mut bytes = [0u8; MESSAGE_SIZE + 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = match rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut bytes)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    ) {
        Ok(received) => received,
        Err(rustix::io::Errno::AGAIN) => {
            return Err(Error::Handshake(format!(
                "no answer from the peer within {ANSWER_TIMEOUT:?}"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            // Keep the first fd; any extra ones are closed when dropped.
            for received_fd in fds {
                fd.get_or_insert(received_fd);
            }
        }
    }
    if received.bytes == 0 {
        return Ok(None);
    }
    let message = Message::decode(&bytes[..received.bytes])?;
    tracing::trace!(kind = message.kind(), "memif recv");
    Ok(Some((message, fd)))
}

/// Receives a message, treating a closed connection as an error.
pub(crate) fn expect(socket: BorrowedFd<'_>) -> Result<(Message, Option<OwnedFd>), Error> {
    match recv(socket)? {
        Some((Message::Disconnect { code, reason }, _)) => Err(Error::Refused { code, reason }),
        Some(m) => Ok(m),
        None => Err(Error::Handshake("peer closed the connection".into())),
    }
}

package io.leasehold.client;

import java.net.http.WebSocket;
import java.util.concurrent.CompletionStage;

/**
 * A websocket listener for leasehold's sockets (the watch, the renewal stream): whole text
 * messages, however fragmented, one at a time, each to {@link #message}; the end of the socket,
 * a close or an error, to {@link #ended} (once or twice: be idempotent).
 */
abstract class TextSocket implements WebSocket.Listener {
    private final StringBuilder text = new StringBuilder();

    /** A whole text message, on the socket's thread: hand it off when it may take long. */
    abstract void message(String text);

    abstract void ended(String why, Throwable error);

    @Override
    public void onOpen(WebSocket ws) {
        ws.request(1);
    }

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
        text.append(data);
        if (last) {
            String t = text.toString();
            text.setLength(0);
            message(t);
        }
        ws.request(1);
        return null;
    }

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int status, String reason) {
        ended("closed " + status + " " + reason, null);
        return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
        ended(error.toString(), error);
    }
}

package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The client's renewal stream (docs/api.md, "Renewals over a stream"): one websocket to {@code
 * GET /v1/renewals}, shared by every leadership (and lease) of one {@link LeaseholdClient}, that
 * carries their renewals and the server's answers, matched by {@code id}, and tells of a lease the
 * server saw end ({@code lost}).
 *
 * <p>It never stands in the way of a renewal: while the stream is not open, {@link #renew}
 * answers null and the caller renews over HTTP; meanwhile the stream is opened, or reopened with
 * backoff (100 ms to 5 s, full jitter). A server without the route (its upgrade answered 400, 404,
 * 405, 426, 501 or 505: an older server, or a proxy that refuses upgrades) is renewed over HTTP
 * and asked again only once a minute. A renewal whose stream closes before its answer has an
 * unknown outcome, as a 503 over HTTP: {@link LeaseholdException.Unavailable}, and the caller
 * retries (over HTTP while the stream is down) while the lease lasts.
 */
final class RenewalStream {
    private static final Logger LOG = Logger.getLogger(RenewalStream.class.getName());

    /** Upgrade answers of a server (or proxy) that has no renewal stream. */
    private static final Set<Integer> NO_STREAM = Set.of(400, 404, 405, 426, 501, 505);
    /** How long a server without the stream is renewed over HTTP before the stream is tried again. */
    static final long UNSUPPORTED_RETRY_MS = 60_000;

    /** Renewals answered over the stream, left to HTTP (stream not open), and cut (stream closed first). */
    final AtomicLong streamed = new AtomicLong();
    final AtomicLong overHttp = new AtomicLong();
    final AtomicLong cut = new AtomicLong();
    /** Streams opened (the first, and every reconnection). */
    final AtomicLong opened = new AtomicLong();

    private final LeaseholdClient client;
    private final AtomicLong nextId = new AtomicLong(1);
    /** sessionId -> what to call when the server says its lease ended. */
    private final Map<String, Runnable> watchers = new ConcurrentHashMap<>();
    // guarded by this
    private Conn conn;
    private boolean connecting;
    private int users;
    private int failures;
    private long retryAtNanos = System.nanoTime();

    RenewalStream(LeaseholdClient client) {
        this.client = client;
    }

    /** Renewals sent on the open stream and not answered yet. */
    synchronized int inFlight() {
        return conn == null ? 0 : conn.pending.size();
    }

    /** Whether renewals go over the stream now. */
    synchronized boolean open() {
        return conn != null;
    }

    /** A user (a leader) starts renewing: the stream opens now, and closes once nobody uses it
     * (so that an idle process holds no socket for it); run the answer once to end this use. */
    Runnable use() {
        synchronized (this) {
            users++;
        }
        connect();
        boolean[] used = {true};
        return () -> {
            Conn c = null;
            synchronized (this) {
                if (!used[0]) return;
                used[0] = false;
                if (--users == 0) {
                    c = conn;
                    conn = null;
                }
            }
            if (c != null) c.close();
        };
    }

    /** Opens the stream unless it is open, opening, backing off, or nobody uses it. */
    void connect() {
        synchronized (this) {
            if (conn != null || connecting || users == 0 || System.nanoTime() - retryAtNanos < 0) return;
            connecting = true;
        }
        Conn c = new Conn();
        WebSocket.Builder b = client.http().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5));
        if (client.token() != null) b.header("Authorization", "Bearer " + client.token());
        CompletableFuture<WebSocket> opening = b.buildAsync(client.wsUri("/v1/renewals"), c);
        // The connect timeout does not bound the handshake: a frozen server would hold it for ever.
        opening.copy().orTimeout(client.requestTimeout().toMillis(), TimeUnit.MILLISECONDS).whenComplete((ws, err) -> {
            boolean keep;
            synchronized (this) {
                connecting = false;
                keep = err == null && users > 0;
                if (keep) {
                    c.ws = ws;
                    conn = c;
                    failures = 0;
                } else if (err != null) {
                    Throwable cause = err.getCause() != null ? err.getCause() : err;
                    int status = cause instanceof WebSocketHandshakeException h ? h.getResponse().statusCode() : 0;
                    long wait = NO_STREAM.contains(status) ? UNSUPPORTED_RETRY_MS : backoffMs(failures++);
                    retryAtNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(wait);
                    LOG.log(Level.FINE, "renewal stream not opened (" + cause + "); renewing over HTTP for " + wait + " ms");
                }
            }
            if (keep) opened.incrementAndGet();
            else if (ws != null) ws.abort();
            else opening.thenAccept(WebSocket::abort); // should it open after all
        });
    }

    /** Up to 100 ms doubling to 5 s, full jitter. */
    private static long backoffMs(int failures) {
        long cap = Math.min(5000, 100L << Math.min(failures, 6));
        return ThreadLocalRandom.current().nextLong(cap + 1);
    }

    /**
     * One renewal over the stream, waited for: the body of the answer (what the HTTP renewal
     * answers), or the error it answers as {@link LeaseholdException#of} makes it over HTTP;
     * null when the stream is not open (renew over HTTP). A stream that closes before the
     * answer, or no answer within {@code timeout}, is {@link LeaseholdException.Unavailable}
     * (outcome unknown); a timeout also drops the stream, which a server or network that
     * stopped answering would otherwise keep.
     *
     * @param lease {@code clusterId}, {@code contenderId}, {@code sessionId}, and {@code
     *              component} or {@code leadership: true}
     */
    JsonNode renew(ObjectNode lease, long ttlMs, Duration timeout) {
        Conn c;
        synchronized (this) {
            c = conn;
        }
        if (c == null) {
            connect();
            overHttp.incrementAndGet();
            return null;
        }
        long id = nextId.getAndIncrement();
        CompletableFuture<JsonNode> answer = new CompletableFuture<>();
        c.pending.put(id, answer);
        ObjectNode m = lease.deepCopy();
        m.put("id", id);
        m.put("ttlMs", ttlMs);
        c.send(m.toString());
        try {
            JsonNode n = answer.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (n.has("error")) {
                ObjectNode body = ((ObjectNode) n).deepCopy();
                body.remove("id");
                throw LeaseholdException.of(n.path("statusCode").asInt(500), body);
            }
            streamed.incrementAndGet();
            return n;
        } catch (TimeoutException e) {
            c.pending.remove(id);
            drop(c, "no answer within " + timeout.toMillis() + " ms");
            throw new LeaseholdException.Unavailable("Timeout", "a streamed renewal timed out after " + timeout.toMillis() + " ms", 0, null, e);
        } catch (ExecutionException e) {
            // The stream closed before the answer.
            throw (LeaseholdException) e.getCause();
        } catch (InterruptedException e) {
            c.pending.remove(id);
            Thread.currentThread().interrupt();
            throw new LeaseholdException.Unavailable("Interrupted", "a streamed renewal was interrupted", 0, null, e);
        }
    }

    /** Calls {@code onLost} when the server says that {@code sessionId}'s lease ended; undone by the answer. */
    Runnable watch(String sessionId, Runnable onLost) {
        watchers.put(sessionId, onLost);
        return () -> watchers.remove(sessionId, onLost);
    }

    /** Ends a connection: its renewals waiting for an answer have an unknown outcome; the next
     * renewal goes over HTTP and opens the stream again after a backoff. */
    private void drop(Conn c, String why) {
        boolean current;
        synchronized (this) {
            current = conn == c;
            if (current) {
                conn = null;
                retryAtNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(backoffMs(failures++));
            }
        }
        if (current) LOG.log(Level.FINE, "renewal stream dropped: " + why);
        c.abort();
    }

    /** Closes the stream now, as a cut would (what is in flight has an unknown outcome); it opens again on the next renewal. */
    void close() {
        Conn c;
        synchronized (this) {
            c = conn;
            conn = null;
        }
        if (c != null) c.close();
    }

    private void receive(Conn c, String text) {
        JsonNode n;
        try {
            n = LeaseholdClient.JSON.readTree(text);
        } catch (Exception e) {
            LOG.log(Level.WARNING, "bad renewal stream message", e);
            return;
        }
        if ("lost".equals(n.path("type").asText()) && n.hasNonNull("sessionId")) {
            Runnable onLost = watchers.remove(n.get("sessionId").asText());
            if (onLost != null) onLost.run();
            return;
        }
        CompletableFuture<JsonNode> p = n.path("id").canConvertToLong() ? c.pending.remove(n.path("id").asLong()) : null;
        if (p != null) p.complete(n);
        else if (n.has("error")) LOG.log(Level.FINE, "renewal stream: " + text);
    }

    /** One websocket of the stream, with the renewals sent on it and not answered yet. */
    private final class Conn extends TextSocket {
        final Map<Long, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
        volatile WebSocket ws;
        /** A websocket takes one send at a time: each waits for the one before. */
        private CompletableFuture<?> sending = CompletableFuture.completedFuture(null);
        private volatile boolean ended;

        synchronized void send(String message) {
            WebSocket w = ws;
            sending = sending.handle((x, e) -> null).thenCompose(x -> w.sendText(message, true)).whenComplete((x, e) -> {
                if (e != null) drop(this, "send failed: " + e);
            });
        }

        @Override
        void message(String text) {
            receive(this, text);
        }

        @Override
        void ended(String why, Throwable error) {
            drop(this, why);
        }

        void close() {
            WebSocket w = ws;
            if (w != null && !ended) w.sendClose(WebSocket.NORMAL_CLOSURE, "").orTimeout(2, TimeUnit.SECONDS)
                    .whenComplete((x, e) -> abort());
            else abort();
        }

        /** Fails what waits for an answer here (outcome unknown) and closes the socket. */
        void abort() {
            ended = true;
            WebSocket w = ws;
            if (w != null) w.abort();
            for (Long id : pending.keySet()) {
                CompletableFuture<JsonNode> p = pending.remove(id);
                if (p == null) continue;
                cut.incrementAndGet();
                p.completeExceptionally(new LeaseholdException.Unavailable("StreamClosed",
                        "the renewal stream closed before the answer: the outcome is unknown", 0, null, null));
            }
        }
    }
}

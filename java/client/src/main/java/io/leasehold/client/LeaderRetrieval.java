package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Follows the leaders of some components: the websocket watch, resumed with {@code since} (the
 * last index seen) after any disconnect, with exponential backoff and full jitter (100 ms to 5 s).
 * When no websocket can be had (the upgrade is refused three times in a row, by a proxy say) it
 * long-polls {@code GET leaders} instead. Changes at or below the last index seen are skipped, so
 * the listener sees each component's leader change once, in index order.
 */
public final class LeaderRetrieval implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LeaderRetrieval.class.getName());

    /** Called on the retrieval's own thread, one call at a time, only when a component's leader changed. */
    public interface Listener {
        void leader(String component, Leader leaderOrNull);
    }

    private final ClusterClient cluster;
    private final List<String> components;
    private final Listener listener;
    private final ExecutorService events = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "leasehold-retrieval");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Leader> known = new HashMap<>();
    private volatile long lastIndex = -1;
    private volatile boolean closed;
    private volatile WebSocket socket;
    private int failures;
    private int refusedUpgrades;
    private volatile boolean longPolling;

    LeaderRetrieval(ClusterClient cluster, List<String> components, Listener listener) {
        this.cluster = cluster;
        this.components = List.copyOf(components);
        this.listener = listener;
    }

    public LeaderRetrieval start() {
        events.execute(this::connect);
        return this;
    }

    /** The last change index seen, or -1. */
    public long index() {
        return lastIndex;
    }

    /** True once it has fallen back to long-polls. */
    public boolean longPolling() {
        return longPolling;
    }

    private void connect() {
        if (closed) return;
        if (longPolling) {
            longPoll();
            return;
        }
        StringBuilder path = new StringBuilder(cluster.base).append("/watch?components=")
                .append(LeaseholdClient.enc(String.join(",", components)));
        if (lastIndex >= 0) path.append("&since=").append(lastIndex);
        WebSocket.Builder b = cluster.client.http().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5));
        if (cluster.client.token() != null) b.header("Authorization", "Bearer " + cluster.client.token());
        b.buildAsync(cluster.client.wsUri(path.toString()), new Socket()).whenComplete((ws, err) -> {
            if (err != null) {
                Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
                events.execute(() -> {
                    if (cause instanceof WebSocketHandshakeException && ++refusedUpgrades >= 3) {
                        LOG.info("websocket upgrade refused " + refusedUpgrades + " times; long-polling instead");
                        longPolling = true;
                    }
                    reconnectLater(cause);
                });
            } else {
                socket = ws;
                if (closed) ws.abort();
            }
        });
    }

    private void reconnectLater(Throwable cause) {
        if (closed) return;
        failures++;
        long cap = Math.min(5000, 100L << Math.min(failures, 6));
        long delay = ThreadLocalRandom.current().nextLong(cap + 1);
        LOG.log(Level.FINE, "watch disconnected; reconnecting in " + delay + " ms", cause);
        CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS, events).execute(this::connect);
    }

    private void longPoll() {
        try {
            ClusterClient.Snapshot s = lastIndex < 0 ? cluster.leaders() : cluster.leaders(lastIndex, Duration.ofSeconds(30));
            failures = 0;
            if (s.index() > lastIndex || lastIndex < 0) snapshot(s.index(), s.leaders());
            events.execute(this::connect);
        } catch (RuntimeException e) {
            reconnectLater(e);
        }
    }

    /** Replaces what is known of the watched components: those absent have no leader. */
    private void snapshot(long index, Map<String, Leader> leaders) {
        for (String c : components) update(c, leaders.get(c));
        lastIndex = Math.max(lastIndex, index);
    }

    private void update(String component, Leader leader) {
        if (!components.contains(component)) return;
        // The first state of each component is told even when it is "no leader".
        boolean seen = known.containsKey(component);
        Leader before = known.put(component, leader);
        if (seen && same(before, leader)) return;
        try {
            listener.leader(component, leader);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "retrieval listener failed", e);
        }
    }

    private static boolean same(Leader a, Leader b) {
        if (a == null || b == null) return a == b;
        return Objects.equals(a.sessionId(), b.sessionId()) && Objects.equals(a.address(), b.address())
                && a.fencingToken() == b.fencingToken();
    }

    private void message(String text) {
        JsonNode n;
        try {
            n = LeaseholdClient.JSON.readTree(text);
        } catch (Exception e) {
            LOG.log(Level.WARNING, "bad watch message", e);
            return;
        }
        failures = 0;
        refusedUpgrades = 0;
        long index = n.path("index").asLong();
        switch (n.path("type").asText()) {
            case "snapshot" -> {
                Map<String, Leader> m = new HashMap<>();
                for (JsonNode e : n.path("leaders")) m.put(e.path("component").asText(), Leader.from(e.get("leader")));
                snapshot(index, m);
                lastIndex = index;
            }
            case "change" -> {
                if (index <= lastIndex) return;
                update(n.path("component").asText(), Leader.from(n.get("leader")));
                lastIndex = index;
            }
            default -> { }
        }
    }

    private final class Socket implements WebSocket.Listener {
        private final StringBuilder text = new StringBuilder();

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
                events.execute(() -> message(t));
            }
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket ws, int status, String reason) {
            events.execute(() -> reconnectLater(new IllegalStateException("closed " + status + " " + reason)));
            return null;
        }

        @Override
        public void onError(WebSocket ws, Throwable error) {
            events.execute(() -> reconnectLater(error));
        }
    }

    @Override
    public void close() {
        closed = true;
        WebSocket ws = socket;
        if (ws != null) ws.abort();
        events.shutdownNow();
    }
}

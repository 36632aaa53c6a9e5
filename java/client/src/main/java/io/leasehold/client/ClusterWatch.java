package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The one watch of a cluster that every {@link LeaderRetrieval} of a {@link LeaseholdClient}
 * shares (issue 17: each of a Flink process's ~155 retrievals used to hold a websocket of its
 * own, each answering the server's pings): the websocket watch of all the cluster's components,
 * resumed with {@code since} (the last index seen) after any disconnect, with exponential backoff
 * and full jitter (100 ms to 5 s). When no websocket can be had (the upgrade is refused three
 * times in a row, by a proxy say) it long-polls {@code GET leaders} instead.
 *
 * <p>It keeps the cluster's leaders as last seen, so that a retrieval that joins later starts
 * from them, and hands every change, once and in index order, to each retrieval, on this watch's
 * own thread. Opened with the first retrieval of the cluster, closed with the last ({@link
 * LeaseholdClient#acquire}).
 */
final class ClusterWatch {
    private static final Logger LOG = Logger.getLogger(ClusterWatch.class.getName());

    final ClusterClient cluster;
    /** Retrievals using it (guarded by the client's map of watches). */
    int users;
    private final ExecutorService events;
    // the events thread only
    private final Map<String, Leader> leaders = new HashMap<>();
    private boolean known;
    private final List<LeaderRetrieval> retrievals = new ArrayList<>();
    private int failures;
    private int refusedUpgrades;
    private volatile long lastIndex = -1;
    private volatile boolean closed;
    private volatile WebSocket socket;
    private volatile boolean longPolling;

    ClusterWatch(ClusterClient cluster) {
        this.cluster = cluster;
        this.events = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "leasehold-watch-" + cluster.id());
            t.setDaemon(true);
            return t;
        });
        events.execute(this::connect);
    }

    /** True once it has fallen back to long-polls. */
    boolean longPolling() {
        return longPolling;
    }

    /** From now on {@code r} is told every change; first, the leaders as known, if they are. */
    void add(LeaderRetrieval r) {
        run(() -> {
            retrievals.add(r);
            if (known) r.snapshot(lastIndex, java.util.Collections.unmodifiableMap(new HashMap<>(leaders)));
        });
    }

    void remove(LeaderRetrieval r) {
        run(() -> retrievals.remove(r));
    }

    private void run(Runnable task) {
        try {
            events.execute(task);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // closed
        }
    }

    private void connect() {
        if (closed) return;
        if (longPolling) {
            longPoll();
            return;
        }
        StringBuilder path = new StringBuilder(cluster.base).append("/watch");
        if (lastIndex >= 0) path.append("?since=").append(lastIndex);
        WebSocket.Builder b = cluster.client.http().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5));
        if (cluster.client.token() != null) b.header("Authorization", "Bearer " + cluster.client.token());
        b.buildAsync(cluster.client.wsUri(path.toString()), new Socket()).whenComplete((ws, err) -> {
            if (err != null) {
                Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
                run(() -> {
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
        LOG.log(Level.FINE, "watch of " + cluster.id() + " disconnected; reconnecting in " + delay + " ms", cause);
        CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS).execute(() -> run(this::connect));
    }

    private void longPoll() {
        try {
            ClusterClient.Snapshot s = lastIndex < 0 ? cluster.leaders() : cluster.leaders(lastIndex, Duration.ofSeconds(30));
            failures = 0;
            if (s.index() > lastIndex || lastIndex < 0) snapshot(s.index(), s.leaders());
            run(this::connect);
        } catch (RuntimeException e) {
            reconnectLater(e);
        }
    }

    /** The cluster's leaders at {@code index}: those absent have none. */
    private void snapshot(long index, Map<String, Leader> now) {
        leaders.clear();
        leaders.putAll(now);
        known = true;
        lastIndex = index;
        // One copy for all: the retrievals read it on their own threads.
        Map<String, Leader> copy = java.util.Collections.unmodifiableMap(new HashMap<>(now));
        for (LeaderRetrieval r : retrievals) r.snapshot(index, copy);
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
            }
            case "change" -> {
                if (index <= lastIndex) return;
                String component = n.path("component").asText();
                Leader leader = Leader.from(n.get("leader"));
                leaders.put(component, leader);
                lastIndex = index;
                for (LeaderRetrieval r : retrievals) r.change(index, component, leader);
            }
            default -> { }
        }
    }

    private final class Socket extends TextSocket {
        @Override
        void message(String text) {
            run(() -> ClusterWatch.this.message(text));
        }

        @Override
        void ended(String why, Throwable error) {
            run(() -> reconnectLater(error != null ? error : new IllegalStateException(why)));
        }
    }

    void close() {
        closed = true;
        WebSocket ws = socket;
        if (ws != null) ws.abort();
        events.shutdownNow();
    }
}

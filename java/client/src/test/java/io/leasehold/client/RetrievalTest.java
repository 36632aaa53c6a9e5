package io.leasehold.client;

import static org.junit.jupiter.api.Assertions.*;

import com.sun.net.httpserver.HttpServer;
import io.leasehold.client.testing.LeaseholdServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class RetrievalTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    record Seen(String component, Leader leader) {}

    static Seen next(BlockingQueue<Seen> q) throws InterruptedException {
        Seen s = q.poll(20, TimeUnit.SECONDS);
        assertNotNull(s, "no leader change within 20 s");
        return s;
    }

    @Test
    void watchSeesChangesAndResumesAfterAServerRestart() throws Exception {
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster("retrieval-ws");
        BlockingQueue<Seen> q = new LinkedBlockingQueue<>();
        try (LeaderRetrieval r = cluster.retrieval(List.of("dispatcher"), (c, l) -> q.add(new Seen(c, l))).start()) {
            assertNull(next(q).leader(), "first: the snapshot, nobody leads");
            var a = cluster.campaign("dispatcher", "a", 60_000, "http://a");
            Seen s = next(q);
            assertEquals("http://a", s.leader().address());
            assertEquals(a.leader().sessionId(), s.leader().sessionId());

            // The server goes away; meanwhile (through a restarted server, same Redis) a resigns and b wins.
            server.stopNode();
            server.startNode();
            cluster.resign("dispatcher", "a", a.leader().sessionId());
            var b = cluster.campaign("dispatcher", "b", 60_000, "http://b");
            // Resumed with since: the revocation of a, then b.
            Seen gone = next(q);
            assertNull(gone.leader());
            Seen bs = next(q);
            assertEquals("http://b", bs.leader().address());
            assertEquals(b.leader().fencingToken(), bs.leader().fencingToken());
            assertFalse(r.longPolling());
        }
    }

    @Test
    void longPollsWhenTheUpgradeIsRefused() throws Exception {
        HttpServer proxy = refusingProxy(server.url());
        try {
            String url = "http://127.0.0.1:" + proxy.getAddress().getPort();
            ClusterClient direct = new LeaseholdClient(server.url(), null).cluster("retrieval-lp");
            ClusterClient viaProxy = new LeaseholdClient(url, null).cluster("retrieval-lp");
            BlockingQueue<Seen> q = new LinkedBlockingQueue<>();
            try (LeaderRetrieval r = viaProxy.retrieval(List.of("rest"), (c, l) -> q.add(new Seen(c, l))).start()) {
                assertNull(next(q).leader());
                assertTrue(r.longPolling());
                direct.campaign("rest", "r1", 60_000, "http://r1:8081");
                assertEquals("http://r1:8081", next(q).leader().address());
            }
        } finally {
            proxy.stop(0);
        }
    }

    /** The server's open websocket watches of {@code cluster} (its gauge). */
    static long watchers(String cluster) throws Exception {
        return server.metric("leasehold_websocket_watchers").getOrDefault("cluster=\"" + cluster + "\"", 0.0).longValue();
    }

    static void awaitWatchers(String cluster, long n) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (watchers(cluster) != n) {
            if (System.nanoTime() - end > 0) fail("watchers of " + cluster + ": " + watchers(cluster) + ", not " + n);
            Thread.sleep(100);
        }
    }

    @Test
    void retrievalsOfAClusterShareOneWatch() throws Exception {
        String id = "retrieval-shared";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        ClusterClient cluster = client.cluster(id);
        List<String> components = List.of("resourcemanager", "dispatcher", "rest", "jobmanager/0123456789abcdef0123456789abcdef");
        List<BlockingQueue<Seen>> queues = new java.util.ArrayList<>();
        List<LeaderRetrieval> retrievals = new java.util.ArrayList<>();
        try {
            // Two retrievals per component, as Flink's services and its clients have.
            for (int i = 0; i < 2 * components.size(); i++) {
                BlockingQueue<Seen> q = new LinkedBlockingQueue<>();
                queues.add(q);
                // Through ClusterClients of their own: the watch is the client's, per cluster.
                retrievals.add(client.cluster(id).retrieval(List.of(components.get(i % components.size())), (c, l) -> q.add(new Seen(c, l))).start());
            }
            for (BlockingQueue<Seen> q : queues) assertNull(next(q).leader(), "first: the snapshot, nobody leads");
            awaitWatchers(id, 1);

            ClusterClient.Campaign jm = cluster.campaignLeadership("jm-a", 60_000, java.time.Duration.ofSeconds(10));
            for (String c : components) cluster.publish(jm.leadership().sessionId(), c, "addr-a-" + c);
            cluster.unpublish(jm.leadership().sessionId(), "rest");
            cluster.publish(jm.leadership().sessionId(), "rest", "addr-a2-rest");
            for (int i = 0; i < queues.size(); i++) {
                String c = components.get(i % components.size());
                Seen s = next(queues.get(i));
                assertEquals(c, s.component());
                assertEquals("addr-a-" + c, s.leader().address());
                if (c.equals("rest")) {
                    assertNull(next(queues.get(i)).leader(), "rest's leader changes, in order");
                    assertEquals("addr-a2-rest", next(queues.get(i)).leader().address());
                }
            }
            // One that joins later starts from the leaders as they are, on the same watch.
            BlockingQueue<Seen> late = new LinkedBlockingQueue<>();
            try (LeaderRetrieval r = cluster.retrieval(List.of("rest"), (c, l) -> late.add(new Seen(c, l))).start()) {
                assertEquals("addr-a2-rest", next(late).leader().address());
                assertEquals(1, watchers(id));
            }
            for (BlockingQueue<Seen> q : queues) assertTrue(q.isEmpty(), "only its component's changes: " + q);
        } finally {
            retrievals.forEach(LeaderRetrieval::close);
        }
        // The last retrieval closes the watch.
        awaitWatchers(id, 0);
    }

    @Test
    void theSharedWatchResumesAfterADropAndEachRetrievalGetsWhatItMissed() throws Exception {
        String id = "retrieval-shared-resume";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        ClusterClient cluster = client.cluster(id);
        BlockingQueue<Seen> dq = new LinkedBlockingQueue<>();
        BlockingQueue<Seen> rq = new LinkedBlockingQueue<>();
        try (LeaderRetrieval d = cluster.retrieval(List.of("dispatcher"), (c, l) -> dq.add(new Seen(c, l))).start();
             LeaderRetrieval r = cluster.retrieval(List.of("rest"), (c, l) -> rq.add(new Seen(c, l))).start()) {
            assertNull(next(dq).leader());
            assertNull(next(rq).leader());
            var a = cluster.campaign("dispatcher", "a", 60_000, "http://a");
            var ra = cluster.campaign("rest", "a", 60_000, "http://a:8081");
            assertEquals("http://a", next(dq).leader().address());
            assertEquals("http://a:8081", next(rq).leader().address());
            long before = d.index();

            // The server goes away; through the restarted server (same Redis) both change twice.
            server.stopNode();
            server.startNode();
            cluster.resign("dispatcher", "a", a.leader().sessionId());
            cluster.resign("rest", "a", ra.leader().sessionId());
            var b = cluster.campaign("dispatcher", "b", 60_000, "http://b");
            var rb = cluster.campaign("rest", "b", 60_000, "http://b:8081");
            assertNull(next(dq).leader());
            assertEquals(b.leader().fencingToken(), next(dq).leader().fencingToken());
            assertNull(next(rq).leader());
            assertEquals(rb.leader().fencingToken(), next(rq).leader().fencingToken());
            assertTrue(d.index() > before);
            awaitWatchers(id, 1);
            Thread.sleep(500);
            assertTrue(dq.isEmpty() && rq.isEmpty(), "each change once: " + dq + " " + rq);
        }
    }

    /** Forwards plain requests (method, body, content type, token) to the server and refuses websocket upgrades, as some proxies do. */
    static HttpServer refusingProxy(String target) throws Exception {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        s.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
        s.createContext("/", ex -> {
            try (ex) {
                if ("websocket".equalsIgnoreCase(ex.getRequestHeaders().getFirst("Upgrade"))) {
                    ex.sendResponseHeaders(400, -1);
                    return;
                }
                HttpURLConnection c = (HttpURLConnection) URI.create(target + ex.getRequestURI()).toURL().openConnection();
                c.setRequestMethod(ex.getRequestMethod());
                c.setReadTimeout(60_000);
                for (String h : List.of("Content-Type", "Authorization")) {
                    String v = ex.getRequestHeaders().getFirst(h);
                    if (v != null) c.setRequestProperty(h, v);
                }
                byte[] sent = ex.getRequestBody().readAllBytes();
                if (sent.length > 0) {
                    c.setDoOutput(true);
                    try (OutputStream out = c.getOutputStream()) {
                        out.write(sent);
                    }
                }
                int status = c.getResponseCode();
                try (InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream()) {
                    byte[] body = in == null ? new byte[0] : in.readAllBytes();
                    ex.getResponseHeaders().add("content-type", "application/json");
                    ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
                    try (OutputStream out = ex.getResponseBody()) {
                        out.write(body);
                    }
                }
            }
        });
        s.start();
        return s;
    }
}

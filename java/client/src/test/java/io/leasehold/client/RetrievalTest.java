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

    /** Forwards plain requests to the server and refuses websocket upgrades, as some proxies do. */
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

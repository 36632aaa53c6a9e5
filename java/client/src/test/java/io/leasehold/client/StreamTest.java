package io.leasehold.client;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import io.leasehold.client.ElectionTest.Event;
import io.leasehold.client.ElectionTest.Recorder;
import io.leasehold.client.testing.LeaseholdServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Renewals over the renewal stream (issue 19), against a real server. */
class StreamTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    static final String RENEW = "POST /v1/clusters/:clusterId/leadership/renew";

    /** HTTP renewals the server answered for {@code cluster}. */
    static long httpRenewals(String cluster) throws Exception {
        return requests(cluster).getOrDefault(RENEW, 0L);
    }

    static Map<String, Long> requests(String cluster) throws Exception {
        return server.requests(cluster);
    }

    static void await(String what, long ms, BooleanSupplier done) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() - end > 0) fail(what + " not within " + ms + " ms");
            Thread.sleep(50);
        }
    }

    @Test
    void streamedRenewalsKeepTheLeadership() throws Exception {
        String id = "stream-keep";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        Recorder r = new Recorder();
        try (LeadershipElection e = client.cluster(id).election(LeadershipElection.Options.of("jm-1", 1200)).start(r)) {
            assertEquals("granted", r.next().kind());
            Thread.sleep(4000);
            assertTrue(r.events.isEmpty(), "no revocation: " + r.events);
            assertTrue(e.isLeader());
            Map<String, Long> stats = client.renewalStats();
            // A renewal every 400 ms for 4 s, all but perhaps the first (the stream opens with the grant) streamed.
            assertTrue(stats.get("streamed") >= 5, "streamed: " + stats);
            assertEquals(1L, stats.get("opened"), "one stream: " + stats);
            assertTrue(httpRenewals(id) <= 1, "HTTP renewals: " + requests(id));
        }
    }

    @Test
    void manyLeadershipsShareOneStream() throws Exception {
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        int n = 20;
        List<Recorder> recorders = new ArrayList<>();
        List<LeadershipElection> elections = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                Recorder r = new Recorder();
                recorders.add(r);
                elections.add(client.cluster("stream-many-" + i).election(LeadershipElection.Options.of("jm", 1500)).start(r));
            }
            for (Recorder r : recorders) assertEquals("granted", r.next().kind());
            Thread.sleep(3000);
            for (int i = 0; i < n; i++) {
                assertTrue(recorders.get(i).events.isEmpty(), "no revocation of " + i + ": " + recorders.get(i).events);
                assertTrue(elections.get(i).isLeader());
            }
            Map<String, Long> stats = client.renewalStats();
            assertEquals(1L, stats.get("opened"), "one stream for all: " + stats);
            assertTrue(stats.get("streamed") >= 4L * n, "streamed: " + stats);
            long overHttp = 0;
            for (int i = 0; i < n; i++) overHttp += httpRenewals("stream-many-" + i);
            assertTrue(overHttp <= n, "HTTP renewals: " + overHttp + ", " + stats);
        } finally {
            for (LeadershipElection e : elections) e.close();
        }
    }

    @Test
    void aStreamCutMidRenewalIsAnUnknownOutcomeThenRecovered() throws Exception {
        String id = "stream-cut";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        ClusterClient cluster = client.cluster(id);
        // A long lease: it outlives the server's restart.
        ClusterClient.Campaign c = cluster.campaignLeadership("jm", 60_000, Duration.ofSeconds(10));
        assertTrue(c.granted());
        ObjectNode lease = ClusterClient.obj().put("clusterId", id).put("leadership", true).put("contenderId", "jm")
                .put("sessionId", c.leadership().sessionId());
        RenewalStream stream = client.renewals();
        Runnable unuse = stream.use();
        boolean stopped = false;
        try {
            await("the stream open", 10_000, stream::open);
            JsonNode a = stream.renew(lease, 60_000, Duration.ofSeconds(10));
            assertEquals(c.leadership().sessionId(), a.path("leadership").path("sessionId").asText());

            // The server freezes with a renewal on the wire, then dies: the renewal's outcome is unknown.
            server.signalNode("STOP");
            stopped = true;
            CompletableFuture<JsonNode> cut = CompletableFuture.supplyAsync(() -> stream.renew(lease, 60_000, Duration.ofSeconds(30)));
            await("a renewal in flight", 10_000, () -> stream.inFlight() == 1);
            server.stopNode();
            stopped = false;
            var err = assertThrows(java.util.concurrent.ExecutionException.class, () -> cut.get(20, TimeUnit.SECONDS));
            assertInstanceOf(LeaseholdException.Unavailable.class, err.getCause());
            assertEquals("StreamClosed", ((LeaseholdException) err.getCause()).code());
            assertEquals(1L, client.renewalStats().get("cut"));
            assertFalse(stream.open());

            // Back: renewals go over HTTP (null here) until the stream is open again, then over it.
            server.startNode();
            JsonNode[] again = {null};
            await("a streamed renewal after the restart", 20_000, () -> (again[0] = stream.renew(lease, 60_000, Duration.ofSeconds(10))) != null);
            assertEquals(c.leadership().sessionId(), again[0].path("leadership").path("sessionId").asText());
            assertEquals(2L, client.renewalStats().get("opened"));
            // An error is answered as over HTTP.
            ObjectNode other = lease.deepCopy().put("sessionId", "00000000-0000-0000-0000-000000000000");
            assertThrows(LeaseholdException.NotLeader.class, () -> stream.renew(other, 60_000, Duration.ofSeconds(10)));
        } finally {
            if (stopped) server.signalNode("CONT");
            unuse.run();
        }
    }

    @Test
    void anElectionRecoversFromACutStream() throws Exception {
        String id = "stream-cut-election";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        Recorder r = new Recorder();
        try (LeadershipElection e = client.cluster(id).election(LeadershipElection.Options.of("jm", 3000)).start(r)) {
            assertEquals("granted", r.next().kind());
            await("a streamed renewal", 10_000, () -> client.renewalStats().get("streamed") > 0);
            server.stopNode();
            server.startNode();
            // Led again (kept through the restart, or revoked and granted anew), renewing over a new stream.
            await("leading again", 30_000, e::isLeader);
            long streamed = client.renewalStats().get("streamed");
            await("streamed renewals again", 15_000, () -> client.renewalStats().get("streamed") > streamed + 2);
            assertTrue(e.isLeader());
            assertTrue(client.renewalStats().get("opened") >= 2);
            for (Event ev : r.events) assertNotEquals("resigned", ev.reason());
        }
    }

    @Test
    void renewsOverHttpWhenTheStreamIsRefusedOrOff() throws Exception {
        HttpServer proxy = RetrievalTest.refusingProxy(server.url());
        try {
            String id = "stream-refused";
            LeaseholdClient client = new LeaseholdClient("http://127.0.0.1:" + proxy.getAddress().getPort(), null);
            Recorder r = new Recorder();
            try (LeadershipElection e = client.cluster(id).election(LeadershipElection.Options.of("jm", 1500)).start(r)) {
                assertEquals("granted", r.next().kind());
                Thread.sleep(3000);
                assertTrue(r.events.isEmpty(), "no revocation: " + r.events);
                assertTrue(e.isLeader());
                Map<String, Long> stats = client.renewalStats();
                assertEquals(0L, stats.get("opened"), "" + stats);
                assertEquals(0L, stats.get("streamed"), "" + stats);
                assertTrue(stats.get("overHttp") >= 4, "" + stats);
                assertTrue(httpRenewals(id) >= 4, "HTTP renewals: " + requests(id));
            }
        } finally {
            proxy.stop(0);
        }

        String id = "stream-off";
        LeaseholdClient client = LeaseholdClient.builder(server.url()).renewalStream(false).build();
        Recorder r = new Recorder();
        try (LeadershipElection e = client.cluster(id).election(LeadershipElection.Options.of("jm", 1500)).start(r)) {
            assertEquals("granted", r.next().kind());
            Thread.sleep(2000);
            assertTrue(e.isLeader());
            assertEquals(Map.of("streamed", 0L, "overHttp", 0L, "cut", 0L, "opened", 0L), client.renewalStats());
            assertTrue(httpRenewals(id) >= 3, "HTTP renewals: " + requests(id));
        }
    }

    @Test
    void theServersLostPushRevokesAtOnce() throws Exception {
        String id = "stream-lost";
        LeaseholdClient client = new LeaseholdClient(server.url(), null);
        ClusterClient cluster = client.cluster(id);
        Recorder r = new Recorder();
        // Renewed every 10 s: without the push, the revocation would wait for the next renewal.
        try (LeadershipElection e = cluster.election(new LeadershipElection.Options("jm", 30_000, 10_000, 3000, 500, 30_000)).start(r)) {
            Event g = r.next();
            assertEquals("granted", g.kind());
            // The server sees a leadership end through its components (one that published nothing ends unseen).
            assertTrue(e.publish(g.leadership().sessionId(), "dispatcher", "akka://jm"));
            await("a streamed renewal", 20_000, () -> client.renewalStats().get("streamed") > 0);
            long revokedAt = System.nanoTime();
            assertTrue(cluster.revokeLeadership(null));
            Event lost = r.next();
            assertEquals("revoked", lost.kind());
            assertEquals("lost", lost.reason());
            long ms = TimeUnit.NANOSECONDS.toMillis(lost.atNanos() - revokedAt);
            assertTrue(ms < 5000, "revoked " + ms + " ms after the operator's revocation (the push, not the next renewal)");
        }
    }
}

package io.leasehold.client;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.client.testing.LeaseholdServer;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The election on the leadership routes (issue 22), against a real server. */
class ElectionTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    record Event(String kind, Leadership leadership, String reason, long atNanos) {}

    static final class Recorder implements LeadershipElection.Listener {
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();

        @Override
        public void granted(Leadership l) {
            events.add(new Event("granted", l, null, System.nanoTime()));
        }

        @Override
        public void revoked(Leadership l, String reason) {
            events.add(new Event("revoked", l, reason, System.nanoTime()));
        }

        Event next() throws InterruptedException {
            Event e = events.poll(20, TimeUnit.SECONDS);
            assertNotNull(e, "no election event within 20 s");
            return e;
        }
    }

    @Test
    void grantPublishAndRevokeByAnOperator() throws Exception {
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster("election-revoke");
        Recorder r = new Recorder();
        try (LeadershipElection e = cluster.election(LeadershipElection.Options.of("jm-1", 3000)).start(r)) {
            Event g = r.next();
            assertEquals("granted", g.kind());
            assertTrue(e.isLeader());
            assertEquals(Long.toString(g.leadership().token()), e.token());
            assertTrue(e.publish(g.leadership().sessionId(), "dispatcher", "akka://d"));
            assertTrue(e.publish(g.leadership().sessionId(), "rest", "http://r:8081"));
            Leader d = cluster.leader("dispatcher");
            assertEquals("akka://d", d.address());
            assertEquals(g.leadership().sessionId(), d.sessionId());
            assertEquals(g.leadership().token(), d.fencingToken());
            assertFalse(e.publish("00000000-0000-0000-0000-000000000000", "rest", "x"), "not for another session");

            // The store writes of the cluster are fenced by the leadership's token.
            String job = "0123456789abcdef0123456789abcdef";
            cluster.jobResults().createDirty(job, ClusterClient.obj().put("applicationStatus", "SUCCEEDED"), e);

            assertTrue(cluster.revokeLeadership(null));
            Event lost = r.next();
            assertEquals("revoked", lost.kind());
            assertEquals("lost", lost.reason());
            assertThrows(LeaseholdException.NotLeader.class, e::token);
            Event again = r.next();
            assertEquals("granted", again.kind());
            assertNotEquals(g.leadership().sessionId(), again.leadership().sessionId());
            assertTrue(again.leadership().token() > g.leadership().token());
            // nothing published under the new leadership yet
            assertNull(cluster.leader("dispatcher"));
            // the old token fences nothing any more
            assertThrows(LeaseholdException.Fencing.class, () -> cluster.jobResults().markClean(job, Fence.of(g.leadership().token())));
        }
        assertNull(cluster.leadership(), "close resigns");
    }

    @Test
    void stepsDownBeforeTheLeaseMayHaveEndedWhenRenewalsGoUnanswered() throws Exception {
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster("election-stepdown");
        Recorder r = new Recorder();
        long ttl = 2000;
        try (LeadershipElection e = cluster.election(LeadershipElection.Options.of("jm-1", ttl)).start(r)) {
            Event g = r.next();
            assertEquals("granted", g.kind());
            // The server freezes: no renewal is answered (requests hang, then time out).
            long frozenAt = System.nanoTime();
            server.signalNode("STOP");
            try {
                Event revoked = r.next();
                assertEquals("unconfirmed", revoked.reason());
                assertFalse(e.isLeader());
                // It stepped down no later than TTL after the freeze (its last renewal was sent before it).
                long ms = TimeUnit.NANOSECONDS.toMillis(revoked.atNanos() - frozenAt);
                assertTrue(ms < ttl, "stepped down " + ms + " ms after the freeze, lease " + ttl + " ms");
            } finally {
                server.signalNode("CONT");
            }
            Event back = r.next();
            assertEquals("granted", back.kind());
        }
    }

    @Test
    void oneLeadershipAtATime() throws Exception {
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster("election-two");
        Recorder a = new Recorder();
        Recorder b = new Recorder();
        try (LeadershipElection ea = cluster.election(LeadershipElection.Options.of("a", 2000)).start(a)) {
            assertEquals("granted", a.next().kind());
            try (LeadershipElection eb = cluster.election(LeadershipElection.Options.of("b", 2000)).start(b)) {
                Thread.sleep(1500);
                assertTrue(b.events.isEmpty(), "b is not granted while a leads");
                ea.close();
                Event gb = b.next();
                assertEquals("granted", gb.kind());
                assertEquals("b", cluster.leadership().contenderId());
            }
        }
    }

    /** HTTP requests the server answered for {@code cluster} (its Prometheus counter), by route. */
    static java.util.Map<String, Long> requests(String cluster) throws Exception {
        return server.requests(cluster);
    }

    static long total(java.util.Map<String, Long> counts) {
        return counts.values().stream().mapToLong(Long::longValue).sum();
    }

    @Test
    void aStandbyWaitsForThePushNotPollingAndCampaignsWhenTheLeadershipEnds() throws Exception {
        String id = "election-push";
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster(id);
        // A leader that never renews: its lease runs out 5 s after it campaigned.
        long ttlA = 5000;
        long sentA = System.nanoTime();
        ClusterClient.Campaign a = cluster.campaignLeadership("a", ttlA, java.time.Duration.ofSeconds(5));
        assertTrue(a.granted());
        cluster.publish(a.leadership().sessionId(), "dispatcher", "akka://a");
        Recorder b = new Recorder();
        // The standby's fallback is its TTL, 10 s: well after a's lease ends.
        try (LeadershipElection eb = cluster.election(LeadershipElection.Options.of("b", 10_000)).start(b)) {
            Thread.sleep(1000);
            var before = requests(id);
            Thread.sleep(2000);
            var idle = requests(id);
            assertEquals(total(before), total(idle), "the standby sent nothing while a led: " + before + " then " + idle);
            assertTrue(b.events.isEmpty(), "b is not granted while a leads");

            Event gb = b.next();
            assertEquals("granted", gb.kind());
            long afterExpiry = TimeUnit.NANOSECONDS.toMillis(gb.atNanos() - sentA) - ttlA;
            assertTrue(afterExpiry > 0, "granted " + afterExpiry + " ms after a's lease ended: before it");
            assertTrue(afterExpiry < 2000, "granted " + afterExpiry + " ms after a's lease ended (push: within about 1 s)");
            var atGrant = requests(id);
            assertTrue(atGrant.getOrDefault("POST /v1/clusters/:clusterId/leadership/campaign", 0L) <= 3,
                    "campaigns: one at the start, one after the push: " + atGrant);

            // b leads, with a component published; c waits, then b resigns.
            assertTrue(eb.publish(gb.leadership().sessionId(), "dispatcher", "akka://b"));
            Recorder c = new Recorder();
            try (LeadershipElection ec = cluster.election(LeadershipElection.Options.of("c", 10_000)).start(c)) {
                Thread.sleep(1000);
                assertTrue(c.events.isEmpty(), "c is not granted while b leads");
                long resignedAt = System.nanoTime();
                eb.close();
                Event gc = c.next();
                assertEquals("granted", gc.kind());
                long ms = TimeUnit.NANOSECONDS.toMillis(gc.atNanos() - resignedAt);
                assertTrue(ms < 2000, "c granted " + ms + " ms after b resigned (push: within about 1 s)");
            }
        }
    }
}

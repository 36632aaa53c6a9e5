package io.leasehold.client;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import io.leasehold.client.testing.LeaseholdServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class StoresTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    static final String JOB = "0123456789abcdef0123456789abcdef";
    ClusterClient cluster;
    Fence dispatcher;

    @BeforeEach
    void lead(org.junit.jupiter.api.TestInfo info) {
        cluster = new LeaseholdClient(server.url(), null).cluster("stores-" + info.getTestMethod().orElseThrow().getName());
        var c = cluster.campaign("dispatcher", "d-1", 60_000, "http://d-1");
        assertTrue(c.granted());
        dispatcher = Fence.of(c.leader().fencingToken());
    }

    @Test
    void jobResultsDirtyThenClean() {
        JobResults results = cluster.jobResults();
        assertNull(results.get(JOB));
        JsonNode e = results.createDirty(JOB, ClusterClient.obj().put("applicationStatus", "SUCCEEDED").put("jobName", "wc"), dispatcher);
        assertEquals("dirty", e.path("state").asText());
        var conflict = assertThrows(LeaseholdException.Conflict.class,
                () -> results.createDirty(JOB, ClusterClient.obj().put("applicationStatus", "FAILED"), dispatcher));
        assertEquals("JobResultExists", conflict.code());
        assertEquals(409, conflict.statusCode());
        assertEquals(1, results.list("dirty").size());
        assertEquals("clean", results.markClean(JOB, dispatcher).path("state").asText());
        assertEquals(0, results.list("dirty").size());
        assertEquals("clean", results.get(JOB).path("state").asText());
        assertThrows(LeaseholdException.NotFound.class, () -> results.markClean("ffffffffffffffffffffffffffffffff", dispatcher));
    }

    @Test
    void writesWithAStaleTokenAreRefused() {
        var stale = Fence.of(1);
        var e = assertThrows(LeaseholdException.Fencing.class,
                () -> cluster.jobResults().createDirty(JOB, ClusterClient.obj().put("applicationStatus", "SUCCEEDED"), stale));
        assertEquals("FencingTokenStale", e.code());
        assertNull(cluster.jobResults().get(JOB));
    }

    @Test
    void executionPlansWithRequirements() {
        ExecutionPlans plans = cluster.executionPlans();
        assertNull(plans.get(JOB));
        assertThrows(LeaseholdException.NotFound.class,
                () -> plans.putRequirements(JOB, ClusterClient.obj().put("a", 1), dispatcher));
        byte[] plan = new byte[100_000];
        new Random(1).nextBytes(plan);
        plans.put(JOB, plan, dispatcher);
        assertArrayEquals(plan, plans.get(JOB));
        assertEquals(List.of(JOB), plans.jobIds());
        plans.putRequirements(JOB, ClusterClient.obj().put("v", 2), dispatcher);
        assertEquals(2, plans.getRequirements(JOB).path("v").asInt());
        cluster.cleanupJob(JOB, dispatcher);
        assertNull(plans.get(JOB));
        assertNull(plans.getRequirements(JOB));
    }

    @Test
    void checkpointsAndCounter() {
        var jm = cluster.campaign("jobmanager/" + JOB, "jm-1", 60_000, "http://jm-1");
        Fence fence = Fence.of(jm.leader().fencingToken());
        Checkpoints cps = cluster.checkpoints(JOB);
        assertEquals(1, cps.incrementCounter(fence));
        assertEquals(2, cps.counter());
        cps.add(1, 1000, "file:///c/chk-1", new byte[] {1, 2, 3}, Map.of("type", "CHECKPOINT"), 2, fence);
        cps.add(2, 2000, "file:///c/chk-2", null, null, 2, fence);
        JsonNode third = cps.add(3, 3000, "file:///c/chk-3", null, null, 2, fence);
        assertEquals(1, third.path("subsumed").get(0).path("checkpointId").asLong());
        List<Checkpoints.Checkpoint> all = cps.all();
        assertEquals(List.of(2L, 3L), all.stream().map(Checkpoints.Checkpoint::checkpointId).toList());
        var older = assertThrows(LeaseholdException.Conflict.class, () -> cps.add(3, 4000, "file:///x", null, null, 2, fence));
        assertEquals("CheckpointIdNotIncreasing", older.code());
        assertEquals(10, cps.setCounter(10, fence));
        assertThrows(LeaseholdException.Conflict.class, () -> cps.setCounter(5, fence));
        // the dispatcher's token does not fence a job's checkpoints
        assertThrows(LeaseholdException.Fencing.class, () -> cps.add(4, 4000, "file:///c/chk-4", null, null, 2, dispatcher));
        cps.shutdown("FINISHED", fence);
        cps.shutdownCounter("FINISHED", fence);
        assertTrue(cps.all().isEmpty());
    }

    @Test
    void firstCheckpointMetadataComesBack() {
        var jm = cluster.campaign("jobmanager/" + JOB, "jm-1", 60_000, null);
        Fence fence = Fence.of(jm.leader().fencingToken());
        byte[] meta = new byte[50_000];
        new Random(2).nextBytes(meta);
        cluster.checkpoints(JOB).add(7, 7000, "file:///c/chk-7", meta, Map.of("savepoint", "false"), 1, fence);
        var c = cluster.checkpoints(JOB).all().get(0);
        assertArrayEquals(meta, c.metadata());
        assertEquals("false", c.properties().get("savepoint"));
    }

    @Test
    void blobsStreamBothWays() throws Exception {
        Blobs blobs = cluster.blobs();
        Path f = Files.createTempFile("blob", ".bin");
        Path g = Files.createTempFile("blob", ".out");
        try {
            byte[] data = new byte[3_000_000];
            new Random(3).nextBytes(data);
            Files.write(f, data);
            assertEquals(data.length, blobs.put(JOB, "p-abc-1", f, dispatcher).path("size").asLong());
            blobs.put("_", "no-job", f, dispatcher);
            assertTrue(blobs.get(JOB, "p-abc-1", g));
            assertArrayEquals(data, Files.readAllBytes(g));
            assertFalse(blobs.get(JOB, "missing", g));
            assertEquals(1, blobs.list(JOB).size());
            assertTrue(blobs.delete(JOB, "p-abc-1", dispatcher));
            assertFalse(blobs.delete(JOB, "p-abc-1", dispatcher));
            assertEquals(1, blobs.deleteAll("_", dispatcher));
        } finally {
            Files.deleteIfExists(f);
            Files.deleteIfExists(g);
        }
    }

    @Test
    void cleanupAllDataRemovesEverything() {
        cluster.jobResults().createDirty(JOB, ClusterClient.obj().put("applicationStatus", "SUCCEEDED"), dispatcher);
        JsonNode r = cluster.cleanupCluster();
        assertEquals(1, r.path("deleted").path("jobResults").asInt());
        assertNull(cluster.jobResults().get(JOB));
        assertNull(cluster.leader("dispatcher"));
    }
}

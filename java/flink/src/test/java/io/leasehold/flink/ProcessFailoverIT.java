package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.Leader;
import io.leasehold.client.LeaseholdClient;
import io.leasehold.client.Leadership;
import io.leasehold.client.testing.LeaseholdServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two JobManager processes and a TaskManager process, each its own JVM with the plugin's shaded
 * jar (an integration test: Failsafe runs it after {@code package} built the jar), on a
 * real leasehold: the leading JobManager paused (SIGSTOP) past its lease, then kill -9 of the
 * leading JobManager; each time the standby takes over, the job continues from its latest
 * checkpoint, and GET leaders shows the new addresses. The paused one, resumed, steps down.
 */
class ProcessFailoverIT {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    @TempDir
    Path tmp;

    private final FlinkCluster flink = new FlinkCluster();

    @AfterEach
    void stopAll() throws Exception {
        flink.close();
    }

    private FlinkProcess start(String name, String main, Path conf, Map<String, String> env) throws Exception {
        return flink.start(name, main, conf, env);
    }

    private String logs() {
        return flink.logs();
    }

    private static Map<String, List<Long>> counts(Path file) throws Exception {
        return FlinkCluster.counts(file);
    }

    @Test
    void pausedThenKilledLeadersAreReplaced() throws Exception {
        String clusterId = "flink-processes";
        Map<String, String> m = FlinkCluster.processTestConfig(server.url(), clusterId, tmp.resolve("checkpoints"));
        Path conf = FlinkProcess.configDir(tmp.resolve("conf"), m);
        Path countFile = tmp.resolve("counts.txt");
        Map<String, String> env = Map.of("LEASEHOLD_COUNT_FILE", countFile.toString());
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster(clusterId);

        String jar = System.getProperty("leasehold.pluginJar");
        if (jar != null) {
            // The processes run the shaded jar, not the plugin's or the client's own classes.
            String cp = FlinkProcess.classPath();
            assertTrue(cp.contains(jar), cp);
            assertFalse(cp.contains("/flink/target/classes") || cp.contains("/client/target/classes"), cp);
            System.out.println("plugin jar of the Flink processes: " + jar);
        }
        FlinkProcess jm1 = start("jobmanager-1", FlinkProcess.JOB_MANAGER, conf, env);
        flink.awaitLeader(cluster, jm1, Duration.ofSeconds(90));
        FlinkProcess jm2 = start("jobmanager-2", FlinkProcess.JOB_MANAGER, conf, env);
        start("taskmanager", FlinkProcess.TASK_MANAGER, conf, env);
        FlinkHa.await("the rest endpoint published", Duration.ofSeconds(60), () -> {
            Leader r = cluster.leader("rest");
            return r != null && r.address() != null;
        });

        String jid = FlinkCluster.submitCountingJob(m, clusterId);
        FlinkHa.await("counting, with checkpoints in leasehold", Duration.ofSeconds(120), () -> {
            try {
                return !counts(countFile).isEmpty() && cluster.checkpoints(jid).counter() > 3;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        // 1. jobmanager-1 is paused (SIGSTOP) past its lease: jobmanager-2 takes over; when it
        //    resumes, its own clock tells it its lease may have ended: it steps down, and whatever it
        //    still tries to write is refused (by that clock, or by leasehold's fencing).
        long pausedMs = takeOver(cluster, jid, countFile, jm1, jm2, () -> jm1.signal("STOP"));
        Leadership second = cluster.leadership();
        jm1.signal("CONT");
        FlinkHa.await("jobmanager-1 steps down", Duration.ofSeconds(30),
                () -> jm1.logTail(400).contains("revoked: unconfirmed"));
        Thread.sleep(3000);
        assertEquals(second.sessionId(), cluster.leadership().sessionId(), "jobmanager-2 still leads");
        assertTrue(jm1.alive(), () -> "jobmanager-1 died after resuming" + logs());

        // 2. kill -9 of the leader, jobmanager-2: jobmanager-1, a standby now, takes over.
        long killedMs = takeOver(cluster, jid, countFile, jm2, jm1, jm2::kill);
        System.out.println("takeover: jobmanager-2 led " + pausedMs + " ms after SIGSTOP of jobmanager-1, jobmanager-1 led "
                + killedMs + " ms after kill -9 of jobmanager-2 (lease TTL 3 s)");
    }

    interface Action {
        void run() throws Exception;
    }

    /**
     * Does {@code action} to the leader {@code from}; waits until {@code to} leads, the job counts
     * on in a new run that continued from a checkpoint (not from zero), and GET leaders shows
     * {@code to}'s addresses under its session. Returns how long {@code to} took to lead.
     */
    private long takeOver(ClusterClient cluster, String jid, Path countFile, FlinkProcess from, FlinkProcess to, Action action)
            throws Exception {
        Leadership before = cluster.leadership();
        assertTrue(before.contenderId().startsWith(from.pid() + "@"), from.name + " leads");
        Map<String, Leader> leadersBefore = cluster.leaders().leaders();
        assertEquals(before.sessionId(), leadersBefore.get("jobmanager/" + jid).sessionId());
        String dispatcherBefore = leadersBefore.get("dispatcher").address();
        int runsBefore = counts(countFile).size();

        long at = System.nanoTime();
        action.run();
        FlinkHa.await(to.name + " leads", Duration.ofSeconds(60), () -> {
            Leadership l = cluster.leadership();
            return l != null && l.contenderId().startsWith(to.pid() + "@");
        });
        long tookMs = (System.nanoTime() - at) / 1_000_000;
        FlinkHa.await("the job counts on in a new run", Duration.ofSeconds(120), () -> {
            try {
                assertTrue(to.alive(), () -> to.name + " died" + logs());
                Map<String, List<Long>> c = counts(countFile);
                return c.size() > runsBefore && last(c).size() > 3;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        Map<String, List<Long>> c = counts(countFile);
        long firstAfter = last(c).get(0);
        long countedBefore = new ArrayList<>(c.values()).get(runsBefore - 1).stream().mapToLong(Long::longValue).max().orElse(0);
        assertTrue(firstAfter > 1, "continued from a checkpoint, not from zero: " + firstAfter);
        assertTrue(firstAfter <= countedBefore + 10, "from a checkpoint of what was counted: " + firstAfter + " vs " + countedBefore);

        Leadership now = cluster.leadership();
        assertTrue(now.token() > before.token(), "a larger fencing token");
        FlinkHa.await("GET leaders shows " + to.name + "'s addresses", Duration.ofSeconds(30), () -> {
            Map<String, Leader> after = cluster.leaders().leaders();
            Leader d = after.get("dispatcher");
            Leader j = after.get("jobmanager/" + jid);
            return d != null && j != null && now.sessionId().equals(d.sessionId()) && now.sessionId().equals(j.sessionId())
                    && !dispatcherBefore.equals(d.address());
        });
        return tookMs;
    }

    private static <V> V last(Map<String, V> m) {
        return FlinkCluster.last(m);
    }
}

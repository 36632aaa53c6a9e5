package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.Leadership;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.client.program.rest.RestClusterClient;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The Flink processes of one test or benchmark run (JobManagers and TaskManagers, each its own
 * JVM: {@link FlinkProcess}), all stopped by {@link #close()}, with their logs under
 * target/process-logs, and the counts that {@link CountingJob} writes in a TaskManager process.
 */
final class FlinkCluster implements AutoCloseable {
    private final List<FlinkProcess> processes = new ArrayList<>();

    /**
     * What two JobManagers and a TaskManager on one host need beside the HA options: any free
     * RPC port each (they find each other through the HA services), and the memory sizes Flink's
     * scripts would compute and pass to a TaskManager (TaskExecutorResourceUtils needs them set).
     */
    static Map<String, String> processConfig(Map<String, String> m) {
        m.put("jobmanager.rpc.address", "localhost");
        m.put("jobmanager.rpc.port", "0");
        m.put("high-availability.jobmanager.port", "0");
        m.put("rest.address", "localhost");
        m.put("taskmanager.host", "localhost");
        m.put("taskmanager.cpu.cores", "2");
        m.put("taskmanager.memory.task.heap.size", "96m");
        m.put("taskmanager.memory.task.off-heap.size", "0m");
        m.put("taskmanager.memory.managed.size", "16m");
        m.put("taskmanager.memory.network.min", "16m");
        m.put("taskmanager.memory.network.max", "16m");
        m.put("taskmanager.memory.framework.heap.size", "64m");
        m.put("taskmanager.memory.framework.off-heap.size", "32m");
        m.put("taskmanager.memory.jvm-metaspace.size", "128m");
        m.put("taskmanager.memory.jvm-overhead.min", "64m");
        m.put("taskmanager.memory.jvm-overhead.max", "64m");
        m.put("jobmanager.memory.process.size", "512m");
        return m;
    }

    /** The configuration of the process tests: a 3 s lease, heartbeats of 1 s / 5 s, checkpoints every 300 ms. */
    static Map<String, String> processTestConfig(String url, String clusterId, Path checkpoints) {
        Map<String, String> m = FlinkHa.config(url, clusterId, checkpoints, Duration.ofSeconds(3));
        processConfig(m);
        m.put("heartbeat.interval", "1000");
        m.put("heartbeat.timeout", "5000");
        return m;
    }

    /** Waits until JobManager {@code p} holds the cluster's leadership (failing should it die). */
    void awaitLeader(ClusterClient cluster, FlinkProcess p, Duration timeout) throws InterruptedException {
        FlinkHa.await(p.name + " leads", timeout, () -> {
            Leadership l = cluster.leadership();
            assertTrue(p.alive(), () -> p.name + " died" + logs());
            return l != null && l.contenderId().startsWith(p.pid() + "@");
        });
    }

    /** Submits an endless {@link CountingJob} (a count each 5 ms) through the REST endpoint; answers its job id. */
    static String submitCountingJob(Map<String, String> m, String clusterId) throws Exception {
        Configuration clientConf = FlinkHa.conf(m);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(clientConf);
        env.setParallelism(1);
        JobGraph job = CountingJob.graph(env, Long.MAX_VALUE, 5).getJobGraph(FlinkCluster.class.getClassLoader(), null);
        try (RestClusterClient<String> client = new RestClusterClient<>(clientConf, clusterId)) {
            client.submitJob(job).get();
        }
        return job.getJobID().toHexString();
    }

    FlinkProcess start(String name, String main, Path conf, Map<String, String> env) throws Exception {
        // Logs under target/, where they outlive the run (CI prints them when a test fails).
        Path logs = Path.of("target", "process-logs");
        Files.createDirectories(logs);
        FlinkProcess p = FlinkProcess.start(name, main, conf, logs, env);
        processes.add(p);
        return p;
    }

    /** The last lines of every process's log, for failure messages. */
    String logs() {
        StringBuilder b = new StringBuilder();
        for (FlinkProcess p : processes) b.append("\n--- ").append(p.name).append('\n').append(p.logTail(40));
        return b.toString();
    }

    /** The counts the TaskManager wrote (LEASEHOLD_COUNT_FILE): run -> counts in order. */
    static Map<String, List<Long>> counts(Path file) throws Exception {
        Map<String, List<Long>> runs = new LinkedHashMap<>();
        if (!Files.exists(file)) return runs;
        for (String line : Files.readAllLines(file)) {
            String[] f = line.split(" ");
            if (f.length == 2) runs.computeIfAbsent(f[0], k -> new ArrayList<>()).add(Long.parseLong(f[1]));
        }
        return runs;
    }

    static <V> V last(Map<String, V> m) {
        V v = null;
        for (V x : m.values()) v = x;
        return v;
    }

    @Override
    public void close() throws Exception {
        for (FlinkProcess p : processes) p.close();
        processes.clear();
    }
}

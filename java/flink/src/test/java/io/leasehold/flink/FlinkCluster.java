package io.leasehold.flink;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

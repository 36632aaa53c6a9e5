package io.leasehold.flink;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A Flink process (a JobManager or a TaskManager) in its own JVM, on the class path Maven built
 * for the tests (Flink's runtime and the plugin: there is no Flink distribution in the
 * registries), with the JVM options Flink's own scripts give Java 17. Its output goes to a log file.
 */
final class FlinkProcess implements AutoCloseable {
    static final String JOB_MANAGER = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint";
    static final String TASK_MANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner";

    final String name;
    final Path log;
    private final Process process;

    private FlinkProcess(String name, Path log, Process process) {
        this.name = name;
        this.log = log;
        this.process = process;
    }

    static Path configDir(Path dir, Map<String, String> conf) throws IOException {
        Files.createDirectories(dir);
        StringBuilder yaml = new StringBuilder();
        conf.forEach((k, v) -> yaml.append(k).append(": \"").append(v.replace("\"", "\\\"")).append("\"\n"));
        Files.writeString(dir.resolve("config.yaml"), yaml);
        return dir;
    }

    static FlinkProcess start(String name, String mainClass, Path configDir, Path logDir, Map<String, String> env) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx384m");
        cmd.addAll(Arrays.asList(System.getProperty("flink.jvm.opens", "").trim().split("\\s+")));
        cmd.add("-cp");
        cmd.add(classPath());
        cmd.add(mainClass);
        cmd.add("--configDir");
        cmd.add(configDir.toString());
        cmd.removeIf(String::isEmpty);
        Path log = logDir.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env);
        return new FlinkProcess(name, log, pb.start());
    }

    /**
     * The test's class path (Flink, the test job) with the plugin as Flink users get it: its
     * shaded jar ({@code -Dleasehold.pluginJar}, set by Failsafe) in place of the plugin's and the
     * client's own classes, so that the processes run what a user drops into Flink's lib/.
     */
    static String classPath() {
        String jar = System.getProperty("leasehold.pluginJar");
        List<String> cp = new ArrayList<>();
        for (String e : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            String n = e.replace('\\', '/');
            boolean plugin = n.endsWith("/flink/target/classes") || n.endsWith("/client/target/classes")
                    || n.matches(".*/leasehold-(client|flink)-[^/]*\\.jar") && !n.endsWith("-tests.jar");
            if (jar == null || !plugin) cp.add(e);
        }
        if (jar != null) {
            if (!Files.exists(Path.of(jar))) throw new IllegalStateException("no plugin jar at " + jar + ": run mvn verify");
            cp.add(jar);
        }
        return String.join(java.io.File.pathSeparator, cp);
    }

    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    void signal(String signal) throws Exception {
        if (new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor() != 0) {
            throw new IllegalStateException("kill -" + signal + " " + name + " failed");
        }
    }

    /** kill -9, and wait until it is gone. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    String logTail(int lines) {
        try {
            List<String> l = Files.readAllLines(log);
            return String.join("\n", l.subList(Math.max(0, l.size() - lines), l.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            try {
                signal("CONT");
            } catch (Exception ignored) {
                // it may be gone already
            }
        }
        kill();
    }
}

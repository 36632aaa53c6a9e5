package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.leasehold.client.testing.LeaseholdServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.client.program.rest.RestClusterClient;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Flink's failover on leasehold against Flink's own ZooKeeper HA (ZooKeeper from Debian's
 * packages), measured in one run on the same machine with the same job and the same processes:
 * two JobManager JVMs and a TaskManager JVM on the class path Maven built (the plugin's shaded
 * jar), for each backend at Flink's default timeouts and at equal short ones.
 *
 * <p>Failover: a checkpointing streaming job ({@link CountingJob}) runs; {@code kill -9} of the
 * leading JobManager, N times (restarting the killed one as the new standby each time); measured
 * from the kill to (a) the job RUNNING again, every vertex deployed anew, as the standby's REST
 * API tells, and (b) the first record the job counted again, restored from a checkpoint.
 *
 * <p>Steady-state HA load: an idle cluster (two JobManagers, a TaskManager) running J jobs that
 * do not checkpoint; requests and writes per second seen by the HA backend over a window:
 * leasehold's HTTP requests (its {@code leasehold_http_requests_total}), the leader's streamed
 * renewals (one each TTL/3) and websocket pongs (its watchers and the renewal stream, one ping
 * each 15 s) and its Redis's commands and writes (INFO), against
 * ZooKeeper's packets received ({@code mntr}) and transactions ({@code srvr}'s Zxid).
 *
 * <p>Not a test that runs by default: {@code mvn -f java/pom.xml -Pbench verify} (or {@code npm
 * run bench:flink}) runs it; {@link FailoverSmokeIT} runs a small one in CI. Settings are system
 * properties: {@code bench.failovers} (3), {@code bench.jobs} (50), {@code bench.window} (60, s),
 * {@code bench.timeouts} ({@code default,short}), {@code bench.loadTimeouts} ({@code default}),
 * {@code bench.short} (3, s), {@code bench.out} (target/bench/flink-failover.md).
 */
class FailoverBench {
    enum Backend {
        LEASEHOLD, ZOOKEEPER;

        String label() {
            return name().toLowerCase();
        }
    }

    enum Timeouts {
        DEFAULT, SHORT;

        String label() {
            return name().toLowerCase();
        }
    }

    record Settings(int failovers, int jobs, Duration window, List<Timeouts> timeouts, List<Timeouts> loadTimeouts,
            Duration shortTimeout, Path out) {
        static Settings fromSystemProperties() {
            return new Settings(Integer.getInteger("bench.failovers", 3), Integer.getInteger("bench.jobs", 50),
                    Duration.ofSeconds(Long.getLong("bench.window", 60)), timeouts("bench.timeouts", "default,short"),
                    timeouts("bench.loadTimeouts", "default"), Duration.ofSeconds(Long.getLong("bench.short", 3)),
                    Path.of(System.getProperty("bench.out", "target/bench/flink-failover.md")));
        }

        private static List<Timeouts> timeouts(String property, String dflt) {
            String v = System.getProperty(property, dflt).trim();
            if (v.isEmpty() || v.equals("none")) return List.of();
            return Arrays.stream(v.split(",")).map(s -> Timeouts.valueOf(s.trim().toUpperCase())).toList();
        }
    }

    /** Kill-to-RUNNING and kill-to-first-record of each failover, in ms. */
    record Failovers(List<Long> running, List<Long> progress) {}

    /** Requests and writes per second seen by the backend. */
    record Load(double requests, double writes, String requestsAre, String writesAre, String also) {}

    /** What one run measured, by "backend/timeouts", and its report. */
    record Result(Map<String, Failovers> failovers, Map<String, Load> loads, String report) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    @TempDir
    Path tmp;

    @Test
    void leaseholdAgainstZooKeeper() throws Exception {
        System.out.println(run(Settings.fromSystemProperties(), tmp).report());
    }

    /** Runs every configuration, writes the report to {@code s.out()}. */
    static Result run(Settings s, Path tmp) throws Exception {
        assertTrue(DebianZooKeeper.installed(), "ZooKeeper is not installed: apt-get install --no-install-recommends zookeeper");
        Map<String, Failovers> failovers = new LinkedHashMap<>();
        Map<String, Load> loads = new LinkedHashMap<>();
        String zkVersion;
        try (DebianZooKeeper zk = DebianZooKeeper.start(tmp.resolve("zk-version"))) {
            zkVersion = zk.mntr().getOrDefault("zk_version", "?").replaceAll("-\\$\\{.*", "").replaceAll(",.*", "");
        }
        for (Timeouts t : s.timeouts()) {
            for (Backend b : Backend.values()) {
                failovers.put(key(b, t), failovers(b, t, s, tmp.resolve("failover-" + key(b, t))));
            }
        }
        for (Timeouts t : s.loadTimeouts()) {
            for (Backend b : Backend.values()) {
                loads.put(key(b, t), load(b, t, s, tmp.resolve("load-" + key(b, t))));
            }
        }
        String report = report(s, zkVersion, failovers, loads);
        Files.createDirectories(s.out().toAbsolutePath().getParent());
        Files.writeString(s.out(), report);
        return new Result(failovers, loads, report);
    }

    static String key(Backend b, Timeouts t) {
        return b.label() + "/" + t.label();
    }

    // --- the HA backends --------------------------------------------------------------------

    /** One backend, started for one configuration and stopped after it. */
    interface Ha extends AutoCloseable {
        Map<String, String> config(String clusterId, Timeouts t, Duration shortTimeout, Path dir);

        Map<String, Double> counters() throws Exception;

        Load rates(Map<String, Double> before, Map<String, Double> after, double seconds);
    }

    static Ha start(Backend b, Path dir) throws Exception {
        Files.createDirectories(dir);
        return b == Backend.LEASEHOLD ? new LeaseholdHa() : new ZooKeeperHa(DebianZooKeeper.start(dir.resolve("zookeeper")));
    }

    static final class LeaseholdHa implements Ha {
        private final LeaseholdServer server = new LeaseholdServer();
        /** The leader's lease TTL, for its streamed renewals. */
        private Duration leaseTtl = LeaseholdHaOptions.LEASE_TTL.defaultValue();

        LeaseholdHa() throws Exception {
            server.start();
        }

        @Override
        public Map<String, String> config(String clusterId, Timeouts t, Duration shortTimeout, Path dir) {
            Map<String, String> m = new HashMap<>();
            m.put("high-availability.type", LeaseholdHaServicesFactory.class.getName());
            m.put("high-availability.cluster-id", clusterId);
            m.put("high-availability.leasehold.url", server.url());
            // Default: the plugin's own (LeaseholdHaOptions.LEASE_TTL, 10 s).
            if (t == Timeouts.SHORT) m.put("high-availability.leasehold.lease-ttl", shortTimeout.toMillis() + " ms");
            leaseTtl = t == Timeouts.SHORT ? shortTimeout : LeaseholdHaOptions.LEASE_TTL.defaultValue();
            return m;
        }

        @Override
        public Map<String, Double> counters() throws Exception {
            // The server's own counter, less what names no cluster (these scrapes, probes).
            double requests = server.metric("leasehold_http_requests_total").entrySet().stream()
                    .filter(e -> !e.getKey().endsWith("cluster=\"\"")).mapToDouble(Map.Entry::getValue).sum();
            double watchers = server.metric("leasehold_websocket_watchers").values().stream().mapToDouble(Double::doubleValue).sum();
            Map<String, String> info = redisInfo(server.redisPort());
            Map<String, Double> c = new HashMap<>();
            c.put("http", requests);
            c.put("watchers", watchers);
            c.put("commands", Double.parseDouble(info.get("total_commands_processed")));
            c.put("writes", Double.parseDouble(info.get("rdb_changes_since_last_save")));
            return c;
        }

        @Override
        public Load rates(Map<String, Double> a, Map<String, Double> b, double seconds) {
            // Less the one INFO of the first reading.
            double commands = (b.get("commands") - a.get("commands") - 1) / seconds;
            double http = (b.get("http") - a.get("http")) / seconds;
            // An idle watch receives no message; the server pings each watcher once per
            // WS_HEARTBEAT_MS (15 s by default) and the watcher answers a pong, which the server
            // does not count: computed from the watchers open, as ZooKeeper's packets count pings.
            double watchers = b.get("watchers");
            // The leader renews over its process's renewal stream (one websocket, pinged as the
            // watches are): a message per renewal, every TTL/3, which the server does not count
            // either: computed from the TTL, one stream, as the pongs are.
            double streamed = 3.0 / (leaseTtl.toMillis() / 1000.0);
            double pongs = (watchers + 1) / 15.0;
            return new Load(http + streamed + pongs, (b.get("writes") - a.get("writes")) / seconds,
                    "HTTP requests, streamed renewals and websocket pongs", "Redis key changes",
                    String.format("HTTP requests %.2f/s, streamed renewals %.2f/s (every TTL/3), pongs %.2f/s (%.0f watchers"
                            + " + 1 renewal stream, a ping each 15 s); Redis commands %.2f/s", http, streamed, pongs, watchers, commands));
        }

        @Override
        public void close() {
            server.stop();
        }
    }

    static final class ZooKeeperHa implements Ha {
        private final DebianZooKeeper zk;

        ZooKeeperHa(DebianZooKeeper zk) {
            this.zk = zk;
        }

        @Override
        public Map<String, String> config(String clusterId, Timeouts t, Duration shortTimeout, Path dir) {
            Map<String, String> m = new HashMap<>();
            m.put("high-availability.type", "zookeeper");
            m.put("high-availability.cluster-id", clusterId);
            m.put("high-availability.zookeeper.quorum", zk.connectString());
            // Flink's ZooKeeper HA keeps its state handles' data in files, pointed to from ZooKeeper.
            m.put("high-availability.storageDir", dir.resolve("ha-storage").toUri().toString());
            // Default: Flink's own (session 60 s, connection 15 s).
            if (t == Timeouts.SHORT) {
                m.put("high-availability.zookeeper.client.session-timeout", shortTimeout.toMillis() + " ms");
            }
            return m;
        }

        @Override
        public Map<String, Double> counters() throws Exception {
            Map<String, Double> c = new HashMap<>();
            c.put("packets", Double.parseDouble(zk.mntr().get("zk_packets_received")));
            c.put("zxid", (double) zk.zxid());
            return c;
        }

        @Override
        public Load rates(Map<String, Double> a, Map<String, Double> b, double seconds) {
            // Less the mntr and srvr of the first reading, which ZooKeeper counts as packets.
            return new Load((b.get("packets") - a.get("packets") - 2) / seconds, (b.get("zxid") - a.get("zxid")) / seconds,
                    "packets received (requests and pings)", "transactions (Zxid)", "");
        }

        @Override
        public void close() throws InterruptedException {
            zk.close();
        }
    }

    /** Redis's INFO (all sections), by field. */
    static Map<String, String> redisInfo(int port) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(5000);
            s.getOutputStream().write("INFO all\r\n".getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            StringBuilder head = new StringBuilder();
            int ch;
            while ((ch = in.read()) != '\n') {
                if (ch < 0) throw new IOException("Redis closed the connection");
                head.append((char) ch);
            }
            int len = Integer.parseInt(head.toString().trim().substring(1));
            String body = new String(in.readNBytes(len), StandardCharsets.UTF_8);
            Map<String, String> m = new HashMap<>();
            for (String line : body.split("\r\n")) {
                int c = line.indexOf(':');
                if (c > 0 && !line.startsWith("#")) m.put(line.substring(0, c), line.substring(c + 1));
            }
            return m;
        }
    }

    // --- the cluster ------------------------------------------------------------------------

    /** Two JobManagers (each its own REST port, so the standby's can be asked) and a TaskManager. */
    private static final class Cluster implements AutoCloseable {
        final FlinkCluster flink = new FlinkCluster();
        final Path[] conf = new Path[2];
        final int[] rest = new int[2];
        final FlinkProcess[] jm = new FlinkProcess[2];
        final Map<String, String> env;
        final String name;
        int started;

        Cluster(String name, Map<String, String> m, Path dir, Map<String, String> env) throws Exception {
            this.name = name;
            this.env = env;
            for (int i = 0; i < 2; i++) {
                rest[i] = LeaseholdServer.freePort();
                Map<String, String> mi = new HashMap<>(m);
                mi.put("rest.port", Integer.toString(rest[i]));
                mi.put("rest.bind-port", Integer.toString(rest[i]));
                conf[i] = FlinkProcess.configDir(dir.resolve("conf-" + i), mi);
            }
        }

        /** JobManager i, up with its REST endpoint (leading if it is alone). */
        void startJobManager(int i) throws Exception {
            jm[i] = flink.start(name + "-jobmanager-" + (char) ('a' + i) + "-" + (++started), FlinkProcess.JOB_MANAGER, conf[i], env);
            FlinkProcess p = jm[i];
            FlinkHa.await(p.name + "'s REST endpoint", Duration.ofSeconds(120), () -> {
                assertTrue(p.alive(), () -> p.name + " died" + flink.logs());
                return get(rest[i], "/config") != null;
            });
        }

        /** JobManager 0 alone (so it leads), then the TaskManager and JobManager 1. */
        void start() throws Exception {
            startJobManager(0);
            FlinkHa.await("jobmanager-a leads", Duration.ofSeconds(120), () -> get(rest[0], "/overview") != null);
            flink.start(name + "-taskmanager", FlinkProcess.TASK_MANAGER, conf[0], env);
            FlinkHa.await("the TaskManager registered", Duration.ofSeconds(120), () -> {
                JsonNode o = get(rest[0], "/overview");
                return o != null && o.path("taskmanagers").asInt() >= 1;
            });
            startJobManager(1);
        }

        JobID submit(JobGraph job, int leader) throws Exception {
            Configuration c = new Configuration();
            c.setString("rest.address", "localhost");
            c.setString("rest.port", Integer.toString(rest[leader]));
            try (RestClusterClient<String> client = new RestClusterClient<>(c, "bench")) {
                return client.submitJob(job).get();
            }
        }

        @Override
        public void close() throws Exception {
            flink.close();
        }
    }

    /** Flink's settings of every run; {@code SHORT} also shortens Flink's heartbeats, equally for both. */
    private static Map<String, String> flinkConfig(Ha ha, Timeouts t, Settings s, Path dir, int slots) {
        Map<String, String> m = FlinkCluster.processConfig(ha.config("bench", t, s.shortTimeout(), dir));
        m.put("taskmanager.numberOfTaskSlots", Integer.toString(slots));
        m.put("restart-strategy.type", "fixed-delay");
        m.put("restart-strategy.fixed-delay.attempts", "1000");
        m.put("restart-strategy.fixed-delay.delay", "200 ms");
        // The REST API's cache of a job (3 s by default) would hide when the job runs again.
        m.put("web.refresh-interval", "100 ms");
        if (t == Timeouts.SHORT) {
            m.put("heartbeat.interval", "1000");
            m.put("heartbeat.timeout", Long.toString(Math.max(5000, s.shortTimeout().toMillis() + 2000)));
        }
        return m;
    }

    // --- failover ---------------------------------------------------------------------------

    static Failovers failovers(Backend b, Timeouts t, Settings s, Path dir) throws Exception {
        List<Long> running = new ArrayList<>();
        List<Long> progress = new ArrayList<>();
        Path countFile = dir.resolve("counts.txt");
        try (Ha ha = start(b, dir)) {
            Map<String, String> m = flinkConfig(ha, t, s, dir, 4);
            m.put("execution.checkpointing.interval", "1 s");
            m.put("execution.checkpointing.storage", "filesystem");
            m.put("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString());
            try (Cluster c = new Cluster("bench-" + b.label() + "-" + t.label(), m, dir,
                    Map.of("LEASEHOLD_COUNT_FILE", countFile.toString()))) {
                c.start();
                StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(FlinkHa.conf(m));
                env.setParallelism(1);
                JobGraph graph = CountingJob.graph(env, Long.MAX_VALUE, 5).getJobGraph(FailoverBench.class.getClassLoader(), null);
                String jid = c.submit(graph, 0).toHexString();
                awaitCheckpoints(c, 0, jid, 3);
                int leader = 0;
                for (int i = 0; i < s.failovers(); i++) {
                    int standby = 1 - leader;
                    long[] took = killLeader(c, leader, standby, jid, countFile);
                    running.add(took[0]);
                    progress.add(took[1]);
                    System.out.printf("%s %s failover %d: RUNNING after %d ms, first record after %d ms%n", b.label(), t.label(),
                            i + 1, took[0], took[1]);
                    if (i == s.failovers() - 1) break;
                    // The killed one comes back as the standby, once the job checkpointed under the new leader.
                    awaitCheckpoints(c, standby, jid, completed(c, standby, jid) + 2);
                    c.startJobManager(leader);
                    // Let the new standby join the election before the next kill.
                    Thread.sleep(3000);
                    leader = standby;
                }
            }
        }
        return new Failovers(running, progress);
    }

    /** kill -9 of the leader; returns ms until the job RUNNING anew on the standby's REST, and until its first record. */
    private static long[] killLeader(Cluster c, int leader, int standby, String jid, Path countFile) throws Exception {
        int runsBefore = FlinkCluster.counts(countFile).size();
        AtomicLong running = new AtomicLong(-1);
        long killWall = System.currentTimeMillis();
        long at = System.nanoTime();
        c.jm[leader].kill();
        long progress = -1;
        long end = at + Duration.ofMinutes(5).toNanos();
        // Asked every 50 ms without waiting for the answers: an endpoint that hangs while there is
        // no leader does not delay the measurement.
        while (running.get() < 0 || progress < 0) {
            if (System.nanoTime() > end) throw new AssertionError("no failover within 5 minutes" + c.flink.logs());
            if (running.get() < 0) {
                getAsync(c.rest[standby], "/jobs/" + jid, j -> {
                    if (runningSince(j, killWall)) running.compareAndSet(-1, (System.nanoTime() - at) / 1_000_000);
                });
            }
            if (progress < 0 && FlinkCluster.counts(countFile).size() > runsBefore) progress = (System.nanoTime() - at) / 1_000_000;
            Thread.sleep(50);
        }
        Map<String, List<Long>> counts = FlinkCluster.counts(countFile);
        long first = FlinkCluster.last(counts).get(0);
        assertTrue(first > 1, "the job continued from a checkpoint, not from zero: " + first);
        return new long[] {running.get(), progress};
    }

    /** The job RUNNING, each vertex deployed (and running) since {@code sinceMs}: by a new JobMaster. */
    static boolean runningSince(JsonNode job, long sinceMs) {
        if (job == null || !"RUNNING".equals(job.path("state").asText())) return false;
        JsonNode vertices = job.path("vertices");
        if (vertices.size() == 0) return false;
        for (JsonNode v : vertices) {
            if (!"RUNNING".equals(v.path("status").asText()) || v.path("start-time").asLong() < sinceMs) return false;
        }
        return true;
    }

    private static int completed(Cluster c, int jm, String jid) {
        JsonNode cp = get(c.rest[jm], "/jobs/" + jid + "/checkpoints");
        return cp == null ? 0 : cp.path("counts").path("completed").asInt();
    }

    private static void awaitCheckpoints(Cluster c, int jm, String jid, int n) throws InterruptedException {
        FlinkHa.await(n + " completed checkpoints", Duration.ofSeconds(180), () -> completed(c, jm, jid) >= n);
    }

    // --- steady-state load ------------------------------------------------------------------

    static Load load(Backend b, Timeouts t, Settings s, Path dir) throws Exception {
        try (Ha ha = start(b, dir)) {
            // No checkpointing: an idle cluster, whose HA load is what its leaders and watchers cost.
            Map<String, String> m = flinkConfig(ha, t, s, dir, s.jobs() + 2);
            try (Cluster c = new Cluster("load-" + b.label() + "-" + t.label(), m, dir, Map.of())) {
                c.start();
                for (int i = 0; i < s.jobs(); i++) {
                    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(FlinkHa.conf(m));
                    env.setParallelism(1);
                    env.fromSequence(1, Long.MAX_VALUE).map(new Sleep()).sinkTo(new DiscardingSink<>());
                    c.submit(env.getStreamGraph().getJobGraph(FailoverBench.class.getClassLoader(), null), 0);
                }
                FlinkHa.await(s.jobs() + " jobs running", Duration.ofMinutes(5), () -> {
                    JsonNode o = get(c.rest[0], "/jobs/overview");
                    if (o == null) return false;
                    int running = 0;
                    for (JsonNode j : o.path("jobs")) {
                        JsonNode tasks = j.path("tasks");
                        if ("RUNNING".equals(j.path("state").asText()) && tasks.path("running").asInt() == tasks.path("total").asInt()) {
                            running++;
                        }
                    }
                    return running == s.jobs();
                });
                // Settle: whatever submitting and deploying wrote is done (15 s; less for a short window).
                Thread.sleep(Math.max(5_000, Math.min(15_000, s.window().toMillis() / 4)));
                Map<String, Double> before = ha.counters();
                long at = System.nanoTime();
                Thread.sleep(s.window().toMillis());
                Map<String, Double> after = ha.counters();
                double seconds = (System.nanoTime() - at) / 1e9;
                Load l = ha.rates(before, after, seconds);
                System.out.printf("%s %s idle load, %d jobs: %.2f %s/s, %.2f %s/s %s%n", b.label(), t.label(), s.jobs(), l.requests(),
                        l.requestsAre(), l.writes(), l.writesAre(), l.also());
                return l;
            }
        }
    }

    /** An idle job's only operator: one record a second. */
    static final class Sleep implements MapFunction<Long, Long> {
        @Override
        public Long map(Long x) throws Exception {
            Thread.sleep(1000);
            return x;
        }
    }

    // --- REST -------------------------------------------------------------------------------

    /** GET of Flink's REST API: the JSON of a 200, else null. */
    static JsonNode get(int port, String path) {
        try {
            HttpResponse<String> r = HTTP.send(request(port, path), HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? JSON.readTree(r.body()) : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static void getAsync(int port, String path, java.util.function.Consumer<JsonNode> then) {
        HTTP.sendAsync(request(port, path), HttpResponse.BodyHandlers.ofString()).thenAccept(r -> {
            if (r.statusCode() != 200) return;
            try {
                then.accept(JSON.readTree(r.body()));
            } catch (IOException ignored) {
                // not JSON: not an answer yet
            }
        });
    }

    private static HttpRequest request(int port, String path) {
        return HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).timeout(Duration.ofSeconds(5)).GET().build();
    }

    // --- the report -------------------------------------------------------------------------

    static long median(List<Long> v) {
        List<Long> s = v.stream().sorted().toList();
        int n = s.size();
        return n == 0 ? -1 : n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    private static String ms(List<Long> v) {
        return String.format("%.1f s (%s)", median(v) / 1000.0,
                String.join(", ", v.stream().map(x -> String.format("%.1f", x / 1000.0)).toList()));
    }

    private static String ratio(double a, double b) {
        return b <= 0 ? "n/a" : String.format("%.2f", a / b);
    }

    static String report(Settings s, String zkVersion, Map<String, Failovers> failovers, Map<String, Load> loads) throws IOException {
        StringBuilder r = new StringBuilder();
        r.append("## Flink failover: leasehold against ZooKeeper (").append(Instant.now().toString(), 0, 16).append(" UTC)\n\n");
        r.append("Flink 2.2.1, 2 JobManager JVMs + 1 TaskManager JVM on one machine (").append(machine()).append("), ZooKeeper ")
                .append(zkVersion).append(" (Debian), Java ").append(System.getProperty("java.version")).append(".\n");
        r.append("default: Flink's defaults (leasehold lease TTL ").append(LeaseholdHaOptions.LEASE_TTL.defaultValue().toSeconds())
                .append(" s, ZooKeeper session 60 s, heartbeat 10 s / 50 s); short: lease")
                .append(" TTL = ZooKeeper session = ").append(s.shortTimeout().toSeconds()).append(" s, heartbeat 1 s / ")
                .append(Math.max(5, s.shortTimeout().toSeconds() + 2)).append(" s.\n\n");
        if (!failovers.isEmpty()) {
            r.append("kill -9 of the leading JobManager, ").append(s.failovers())
                    .append(" times each; median (each run), from the kill to the job RUNNING anew on the standby (REST)")
                    .append(" and to its first record counted again (restored from a checkpoint):\n\n");
            r.append("| timeouts | backend | job RUNNING | first record |\n| --- | --- | --- | --- |\n");
            for (Timeouts t : s.timeouts()) {
                Failovers l = failovers.get(key(Backend.LEASEHOLD, t));
                Failovers z = failovers.get(key(Backend.ZOOKEEPER, t));
                r.append("| ").append(t.label()).append(" | leasehold | ").append(ms(l.running())).append(" | ").append(ms(l.progress())).append(" |\n");
                r.append("| ").append(t.label()).append(" | zookeeper | ").append(ms(z.running())).append(" | ").append(ms(z.progress())).append(" |\n");
                r.append("| ").append(t.label()).append(" | **leasehold / zookeeper** | **")
                        .append(ratio(median(l.running()), median(z.running()))).append("** | **")
                        .append(ratio(median(l.progress()), median(z.progress()))).append("** |\n");
            }
            r.append('\n');
            // docs/design.md §8: at most a fifth of ZooKeeper's time at Flink's defaults, no slower at equal timeouts.
            for (Timeouts t : s.timeouts()) {
                double budget = t == Timeouts.DEFAULT ? 0.2 : 1.0;
                double got = (double) median(failovers.get(key(Backend.LEASEHOLD, t)).running())
                        / median(failovers.get(key(Backend.ZOOKEEPER, t)).running());
                r.append(String.format("Budget (design §8), %s timeouts: job RUNNING ratio %.2f, at most %.2f: %s.%n", t.label(), got,
                        budget, got <= budget ? "within" : "OVER"));
            }
            r.append('\n');
        }
        if (!loads.isEmpty()) {
            r.append("Steady-state HA load of an idle cluster (2 JobManagers, 1 TaskManager) running ").append(s.jobs())
                    .append(" jobs without checkpoints, over ").append(s.window().toSeconds()).append(" s:\n\n");
            r.append("| timeouts | backend | requests/s | writes/s | |\n| --- | --- | --- | --- | --- |\n");
            for (Timeouts t : s.loadTimeouts()) {
                Load l = loads.get(key(Backend.LEASEHOLD, t));
                Load z = loads.get(key(Backend.ZOOKEEPER, t));
                r.append(String.format("| %s | leasehold | %.2f | %.2f | %s, %s; %s |%n", t.label(), l.requests(), l.writes(),
                        l.requestsAre(), l.writesAre(), l.also()));
                r.append(String.format("| %s | zookeeper | %.2f | %.2f | %s, %s |%n", t.label(), z.requests(), z.writes(),
                        z.requestsAre(), z.writesAre()));
                r.append("| ").append(t.label()).append(" | **leasehold / zookeeper** | **").append(ratio(l.requests(), z.requests()))
                        .append("** | **").append(ratio(l.writes(), z.writes())).append("** | |\n");
            }
            r.append('\n');
        }
        return r.toString();
    }

    private static String machine() {
        String cpu = "?";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("?");
        } catch (IOException ignored) {
            // not Linux
        }
        return Runtime.getRuntime().availableProcessors() + " cores, " + cpu;
    }
}

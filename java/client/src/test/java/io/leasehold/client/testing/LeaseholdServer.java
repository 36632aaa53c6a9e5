package io.leasehold.client.testing;

import java.io.File;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A real {@code redis-server} (from PATH, on a free port, in a temp dir, no persistence) and a
 * real leasehold server of this repository ({@code node <repo>/dist/server.js}, built by {@code
 * npm run build} beforehand: .ci/run does it, or this builds it when dist/ is missing), started
 * before a test class and always stopped after it, whatever happened, and by a shutdown hook
 * should the JVM end first. Use as {@code @RegisterExtension static LeaseholdServer server = new LeaseholdServer();}.
 */
public final class LeaseholdServer implements BeforeAllCallback, AfterAllCallback {
    private final Map<String, String> env = new HashMap<>();
    private Path dir;
    private Process redis;
    private Process node;
    private int redisPort;
    private int port;
    private Thread hook;

    /** Extra environment of the leasehold server (LEASE_TTL_MIN_MS, ADMIN_TOKENS, …). */
    public LeaseholdServer env(String name, String value) {
        env.put(name, value);
        return this;
    }

    public String url() {
        return "http://127.0.0.1:" + port;
    }

    public int redisPort() {
        return redisPort;
    }

    public Path dir() {
        return dir;
    }

    public static Path repo() {
        String p = System.getProperty("leasehold.repo");
        if (p != null) return Path.of(p).toAbsolutePath().normalize();
        // Run from java/ or java/<module>: the repository is the first parent with package.json.
        Path d = Path.of("").toAbsolutePath();
        while (d != null && !Files.exists(d.resolve("package.json"))) d = d.getParent();
        if (d == null) throw new IllegalStateException("cannot find the leasehold repository (set -Dleasehold.repo)");
        return d;
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        start();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        stop();
    }

    public synchronized void start() throws Exception {
        dir = Files.createTempDirectory("leasehold-test");
        hook = new Thread(this::stop, "leasehold-test-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            Path repo = repo();
            ensureBuilt(repo);
            redisPort = freePort();
            redis = new ProcessBuilder("redis-server", "--port", Integer.toString(redisPort), "--bind", "127.0.0.1",
                    "--dir", dir.toString(), "--save", "", "--appendonly", "no")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("redis.log").toFile()).start();
            waitForPort(redisPort, 10_000);
            startNode();
        } catch (Exception e) {
            stop();
            throw e;
        }
    }

    /** Starts the leasehold server (again, after {@link #stopNode()}: on the same port when it can). */
    public synchronized void startNode() throws Exception {
        if (port == 0) port = freePort();
        ProcessBuilder pb = new ProcessBuilder("node", repo().resolve("dist/server.js").toString())
                .directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("leasehold.log").toFile()));
        Map<String, String> e = pb.environment();
        e.put("PORT", Integer.toString(port));
        e.put("HOST", "127.0.0.1");
        e.put("REDIS_URL", "redis://127.0.0.1:" + redisPort);
        e.put("DATA_DIR", dir.resolve("data").toString());
        e.put("LOG_LEVEL", "warn");
        e.put("LEASE_TTL_MIN_MS", "200");
        e.putAll(env);
        node = pb.start();
        waitForHttp(url() + "/readyz", 30_000);
    }

    /** Sends a signal to the leasehold server: {@code STOP} freezes it (no request is answered), {@code CONT} resumes it. */
    public synchronized void signalNode(String signal) throws Exception {
        Process p = new ProcessBuilder("kill", "-" + signal, Long.toString(node.pid())).start();
        if (p.waitFor() != 0) throw new IllegalStateException("kill -" + signal + " failed");
    }

    /** kill -9 of the leasehold server (Redis keeps running). */
    public synchronized void stopNode() {
        kill(node);
        node = null;
    }

    public synchronized void stop() {
        kill(node);
        kill(redis);
        node = null;
        redis = null;
        if (hook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // the JVM is shutting down: this is the hook
            }
            hook = null;
        }
        if (dir != null) {
            if (Boolean.getBoolean("leasehold.keepLogs")) return;
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    /**
     * The samples of one metric on the server's {@code /metrics} (Prometheus text), by their
     * labels as written there ({@code method="POST",route="/v1/…",cluster="c"}; {@code ""} for none).
     */
    public Map<String, Double> metric(String name) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(url() + "/metrics").toURL().openConnection();
        c.setConnectTimeout(2000);
        c.setReadTimeout(10_000);
        String text;
        try (var in = c.getInputStream()) {
            text = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
        Map<String, Double> out = new HashMap<>();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "(?m)^" + java.util.regex.Pattern.quote(name) + "(?:\\{(.*)\\})? (\\S+)$").matcher(text);
        while (m.find()) out.put(m.group(1) == null ? "" : m.group(1), Double.parseDouble(m.group(2)));
        return out;
    }

    /** HTTP requests the server answered for {@code cluster} (its Prometheus counter), by "METHOD route". */
    public Map<String, Long> requests(String cluster) throws IOException {
        Map<String, Long> out = new java.util.TreeMap<>();
        java.util.regex.Pattern p = java.util.regex.Pattern.compile("method=\"(\\w+)\",route=\"([^\"]+)\",cluster=\"" + cluster + "\"");
        metric("leasehold_http_requests_total").forEach((labels, n) -> {
            java.util.regex.Matcher m = p.matcher(labels);
            if (m.matches()) out.merge(m.group(1) + " " + m.group(2), n.longValue(), Long::sum);
        });
        return out;
    }

    /** The last lines of the leasehold server's log, for failure messages. */
    public String logTail() {
        try {
            List<String> lines = Files.readAllLines(dir.resolve("leasehold.log"));
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static void kill(Process p) {
        if (p == null) return;
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void ensureBuilt(Path repo) throws Exception {
        if (Files.exists(repo.resolve("dist/server.js"))) return;
        Process p = new ProcessBuilder("npm", "run", "build").directory(repo.toFile()).inheritIO().start();
        if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IllegalStateException("npm run build failed in " + repo);
        }
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    private static void waitForPort(int port, long ms) throws Exception {
        long end = System.currentTimeMillis() + ms;
        while (true) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException e) {
                if (System.currentTimeMillis() > end) throw new IllegalStateException("nothing listens on " + port, e);
                Thread.sleep(50);
            }
        }
    }

    private void waitForHttp(String url, long ms) throws Exception {
        long end = System.currentTimeMillis() + ms;
        List<String> errors = new ArrayList<>();
        while (System.currentTimeMillis() < end) {
            if (node != null && !node.isAlive()) break;
            try {
                HttpURLConnection c = (HttpURLConnection) URI.create(url).toURL().openConnection();
                c.setConnectTimeout(500);
                c.setReadTimeout(2000);
                if (c.getResponseCode() == 200) return;
                errors.add("status " + c.getResponseCode());
            } catch (IOException e) {
                errors.add(e.toString());
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("leasehold server not ready at " + url + ": "
                + (errors.isEmpty() ? "" : errors.get(errors.size() - 1)) + "\n" + logTail());
    }
}

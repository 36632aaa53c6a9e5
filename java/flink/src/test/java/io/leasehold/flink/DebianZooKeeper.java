package io.leasehold.flink;

import io.leasehold.client.testing.LeaseholdServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A standalone ZooKeeper server of Debian's {@code zookeeper} package (its jar, whose manifest
 * names the other jars it needs under /usr/share/java), started as its own JVM on a free port
 * with a data dir of its own, never the packaged service; stopped by {@link #close()}. The
 * four-letter words {@code mntr} and {@code srvr} are enabled, to read its load.
 */
final class DebianZooKeeper implements AutoCloseable {
    static final Path JAR = Path.of(System.getProperty("zookeeper.jar", "/usr/share/java/zookeeper.jar"));

    final int port;
    private final Process process;

    private DebianZooKeeper(int port, Process process) {
        this.port = port;
        this.process = process;
    }

    static boolean installed() {
        return Files.exists(JAR);
    }

    /**
     * Starts one. A tick of 500 ms lets sessions be as short as 1 s (ZooKeeper's minimum is two
     * ticks), and the maximum of 120 s lets Flink's default session timeout (60 s) stand as
     * Flink asks (ZooKeeper's default maximum, 20 ticks, would cut it).
     */
    static DebianZooKeeper start(Path dir) throws Exception {
        if (!installed()) throw new IllegalStateException("no ZooKeeper at " + JAR + ": apt-get install zookeeper");
        Files.createDirectories(dir.resolve("data"));
        int port = LeaseholdServer.freePort();
        Path cfg = dir.resolve("zoo.cfg");
        Files.writeString(cfg, String.join("\n",
                "tickTime=500",
                "minSessionTimeout=1000",
                "maxSessionTimeout=120000",
                "dataDir=" + dir.resolve("data"),
                "clientPort=" + port,
                "clientPortAddress=127.0.0.1",
                "admin.enableServer=false",
                "4lw.commands.whitelist=mntr,srvr,ruok",
                ""));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "-cp", JAR.toString(), "org.apache.zookeeper.server.ZooKeeperServerMain", cfg.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("zookeeper.log").toFile()).start();
        DebianZooKeeper zk = new DebianZooKeeper(port, p);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                // mntr answers once the server serves requests (ruok answers before).
                if (zk.mntr().containsKey("zk_server_state")) return zk;
            } catch (IOException e) {
                if (!p.isAlive() || System.nanoTime() > end) {
                    zk.close();
                    throw new IllegalStateException("ZooKeeper did not start: " + Files.readString(dir.resolve("zookeeper.log")), e);
                }
            }
            Thread.sleep(100);
        }
    }

    String connectString() {
        return "127.0.0.1:" + port;
    }

    String fourLetters(String word) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(5000);
            OutputStream out = s.getOutputStream();
            out.write(word.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The {@code mntr} values, by name ({@code zk_packets_received}, …). */
    Map<String, String> mntr() throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : fourLetters("mntr").split("\n")) {
            String[] kv = line.split("\t", 2);
            if (kv.length == 2) m.put(kv[0].trim(), kv[1].trim());
        }
        return m;
    }

    /** The last transaction id ({@code srvr}'s Zxid): it grows by one with every write. */
    long zxid() throws IOException {
        for (String line : fourLetters("srvr").split("\n")) {
            if (line.startsWith("Zxid:")) return Long.decode(line.substring(5).trim());
        }
        throw new IOException("no Zxid in srvr");
    }

    @Override
    public void close() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }
}

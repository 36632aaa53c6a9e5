package io.leasehold.flink;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP forwarder to one port that can hold what its clients send: while held, their bytes
 * are kept (a request "on the wire", neither lost nor delivered) and sent on {@link #release()};
 * the server's answers always pass. Daemon threads; {@link #close()} ends every connection.
 */
final class HoldingProxy implements AutoCloseable {
    private final ServerSocket listener;
    private final int target;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final Object lock = new Object();
    // guarded by lock
    private boolean held;
    private final ByteArrayOutputStream heldBytes = new ByteArrayOutputStream();
    /** Where each held chunk goes, in order. */
    private final List<Object[]> heldChunks = new java.util.ArrayList<>();

    HoldingProxy(int target) throws IOException {
        this.target = target;
        this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        daemon(this::accept, "proxy-accept");
    }

    int port() {
        return listener.getLocalPort();
    }

    /** From now on, what clients send is kept, not forwarded. */
    void hold() {
        synchronized (lock) {
            held = true;
        }
    }

    /** What was sent since {@link #hold()}, as text (requests are HTTP/1.1, or websocket frames). */
    String heldText() {
        synchronized (lock) {
            return heldBytes.toString(StandardCharsets.ISO_8859_1);
        }
    }

    /** Sends what was kept, in order, and forwards again. */
    void release() throws IOException {
        synchronized (lock) {
            for (Object[] c : heldChunks) {
                try {
                    ((OutputStream) c[0]).write((byte[]) c[1]);
                    ((OutputStream) c[0]).flush();
                } catch (IOException e) {
                    // that connection is gone
                }
            }
            heldChunks.clear();
            heldBytes.reset();
            held = false;
        }
    }

    private void accept() {
        while (!listener.isClosed()) {
            try {
                Socket client = listener.accept();
                Socket server = new Socket(InetAddress.getLoopbackAddress(), target);
                sockets.add(client);
                sockets.add(server);
                daemon(() -> pump(client, server, true), "proxy-up");
                daemon(() -> pump(server, client, false), "proxy-down");
            } catch (IOException e) {
                return;
            }
        }
    }

    private void pump(Socket from, Socket to, boolean up) {
        byte[] buf = new byte[16 * 1024];
        try (InputStream in = from.getInputStream()) {
            OutputStream out = to.getOutputStream();
            int n;
            while ((n = in.read(buf)) > 0) {
                byte[] chunk = java.util.Arrays.copyOf(buf, n);
                synchronized (lock) {
                    if (up && held) {
                        heldChunks.add(new Object[] {out, chunk});
                        heldBytes.write(chunk);
                        continue;
                    }
                    out.write(chunk);
                    out.flush();
                }
            }
        } catch (IOException e) {
            // closed
        } finally {
            // The other direction may still carry held bytes: only a server's end closes both.
            if (!up) close(from, to);
        }
    }

    private static void close(Socket... ss) {
        for (Socket s : ss) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closing
            }
        }
    }

    private static void daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void close() throws IOException {
        listener.close();
        for (Socket s : sockets) close(s);
    }
}

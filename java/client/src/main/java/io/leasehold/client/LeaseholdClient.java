package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A leasehold server: {@code new LeaseholdClient(url, token).cluster("prod-1")}, or {@code
 * LeaseholdClient.builder(url).token(t).renewalStream(false).build()}. Thread-safe; one {@link
 * HttpClient} is shared by everything made from it, and so are one renewal stream (the
 * leaderships' renewals, {@link RenewalStream}) and one watch per cluster (every {@link
 * LeaderRetrieval} of that cluster, {@link ClusterWatch}).
 */
public final class LeaseholdClient {
    static final ObjectMapper JSON = new ObjectMapper();

    private final URI base;
    private final String token;
    private final HttpClient http;
    private final Duration requestTimeout;
    /** Null when leaderships renew over HTTP only. */
    private final RenewalStream renewals;
    /** The shared watch of each cluster some retrieval follows (guarded by itself). */
    private final Map<String, ClusterWatch> watches = new java.util.HashMap<>();

    public LeaseholdClient(String url, String token) {
        this(url, token, Duration.ofSeconds(10));
    }

    /** @param requestTimeout the default timeout of one request (long-polls add their wait) */
    public LeaseholdClient(String url, String token, Duration requestTimeout) {
        this(url, token, requestTimeout, true);
    }

    private LeaseholdClient(String url, String token, Duration requestTimeout, boolean renewalStream) {
        String u = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        this.base = URI.create(u);
        this.token = token == null || token.isEmpty() ? null : token;
        this.requestTimeout = requestTimeout;
        this.http = HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(5))
                .version(HttpClient.Version.HTTP_1_1)
                .build();
        this.renewals = renewalStream ? new RenewalStream(this) : null;
    }

    public static Builder builder(String url) {
        return new Builder(url);
    }

    /** The client's settings; what is not set has the two-argument constructor's default. */
    public static final class Builder {
        private final String url;
        private String token;
        private Duration requestTimeout = Duration.ofSeconds(10);
        private boolean renewalStream = true;

        private Builder(String url) {
            this.url = url;
        }

        /** Bearer token; null or empty for none. */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        /** The default timeout of one request (long-polls add their wait). */
        public Builder requestTimeout(Duration requestTimeout) {
            this.requestTimeout = requestTimeout;
            return this;
        }

        /**
         * Whether leaderships renew over the renewal stream ({@code GET /v1/renewals}, one websocket
         * for all of them, HTTP while it cannot be had): true by default; false renews over HTTP only.
         */
        public Builder renewalStream(boolean renewalStream) {
            this.renewalStream = renewalStream;
            return this;
        }

        public LeaseholdClient build() {
            return new LeaseholdClient(url, token, requestTimeout, renewalStream);
        }
    }

    /** The renewal stream, or null when renewals go over HTTP only. */
    RenewalStream renewals() {
        return renewals;
    }

    /** Renewals answered over the stream, sent over HTTP while it was not open, and cut off with
     * it (outcome unknown); and the streams opened. Zeros when the stream is off. */
    public Map<String, Long> renewalStats() {
        if (renewals == null) return Map.of("streamed", 0L, "overHttp", 0L, "cut", 0L, "opened", 0L);
        return Map.of("streamed", renewals.streamed.get(), "overHttp", renewals.overHttp.get(),
                "cut", renewals.cut.get(), "opened", renewals.opened.get());
    }

    /** The cluster's shared watch, opened by its first user; give it back with {@link #release}. */
    ClusterWatch acquire(ClusterClient cluster) {
        synchronized (watches) {
            ClusterWatch w = watches.computeIfAbsent(cluster.id(), id -> new ClusterWatch(cluster));
            w.users++;
            return w;
        }
    }

    /** One user less; the last one closes the watch (a later user opens a new one). */
    void release(ClusterWatch w) {
        synchronized (watches) {
            if (--w.users > 0) return;
            watches.remove(w.cluster.id(), w);
        }
        w.close();
    }

    public ClusterClient cluster(String clusterId) {
        return new ClusterClient(this, clusterId);
    }

    URI uri(String path) {
        return URI.create(base + path);
    }

    URI wsUri(String path) {
        String s = base.toString();
        return URI.create((s.startsWith("https:") ? "wss:" + s.substring(6) : "ws:" + s.substring(5)) + path);
    }

    HttpClient http() {
        return http;
    }

    String token() {
        return token;
    }

    Duration requestTimeout() {
        return requestTimeout;
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** An answer: status, headers, body. */
    record Answer(int status, HttpResponse<byte[]> response) {
        JsonNode json() {
            try {
                byte[] b = response.body();
                return b == null || b.length == 0 ? JSON.nullNode() : JSON.readTree(b);
            } catch (IOException e) {
                throw new LeaseholdException("BadAnswer", "not JSON: " + e.getMessage(), status, null, e);
            }
        }
    }

    /**
     * Sends one request. Any answer of 400 or more becomes its typed {@link LeaseholdException};
     * a timeout or network failure becomes {@link LeaseholdException.Unavailable} (outcome unknown).
     * Statuses listed in {@code accept} are returned instead of thrown.
     */
    Answer send(String method, String path, HttpRequest.BodyPublisher body, String contentType,
                Map<String, String> headers, Duration timeout, int... accept) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path))
                .timeout(timeout == null ? requestTimeout : timeout)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : body);
        if (contentType != null) b.header("content-type", contentType);
        if (token != null) b.header("authorization", "Bearer " + token);
        if (headers != null) headers.forEach(b::header);
        HttpResponse<byte[]> r;
        try {
            r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpTimeoutException e) {
            throw new LeaseholdException.Unavailable("Timeout", method + " " + path + " timed out", 0, null, e);
        } catch (IOException e) {
            throw new LeaseholdException.Unavailable("NetworkError", method + " " + path + ": " + e, 0, null, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LeaseholdException.Unavailable("Interrupted", method + " " + path + " interrupted", 0, null, e);
        }
        Answer a = new Answer(r.statusCode(), r);
        for (int s : accept) if (s == a.status) return a;
        if (a.status >= 400) {
            JsonNode n;
            try {
                n = JSON.readTree(r.body());
            } catch (Exception e) {
                n = null;
            }
            throw LeaseholdException.of(a.status, n);
        }
        return a;
    }

    JsonNode json(String method, String path, Object body, Map<String, String> headers) {
        return send(method, path, jsonBody(body), body == null ? null : "application/json", headers, null).json();
    }

    static HttpRequest.BodyPublisher jsonBody(Object body) {
        if (body == null) return null;
        try {
            return HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /**
     * A fenced store write, applied once: it carries an {@code Idempotency-Key}, and when its
     * outcome is unknown (503, 429, timeout, network) it is sent again with the same key, a few
     * times, with backoff. The fence is asked on every try, so a lost leadership stops retrying.
     */
    Answer write(String method, String path, java.util.function.Supplier<HttpRequest.BodyPublisher> body,
                 String contentType, Fence fence, Map<String, String> extraHeaders, int... accept) {
        String key = UUID.randomUUID().toString();
        LeaseholdException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            if (attempt > 0) sleep(Math.min(2000, 100L << attempt) / 2 + ThreadLocalRandom.current().nextLong(Math.min(2000, 100L << attempt) / 2));
            Map<String, String> h = new java.util.HashMap<>();
            h.put("x-fencing-token", fence.token());
            h.put("idempotency-key", key);
            if (extraHeaders != null) h.putAll(extraHeaders);
            try {
                return send(method, path, body.get(), contentType, h, null, accept);
            } catch (LeaseholdException.Unavailable e) {
                last = e;
            }
        }
        throw last;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LeaseholdException.Unavailable("Interrupted", "interrupted", 0, null, e);
        }
    }
}

package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Blobs (Flink's {@code BlobStore}), streamed both ways; {@code jobId} {@code _} holds blobs of no job. */
public final class Blobs {
    private final ClusterClient c;

    Blobs(ClusterClient c) {
        this.c = c;
    }

    /** Uploads a file, with its SHA-256 so that the server checks what arrived. */
    public JsonNode put(String jobId, String blobKey, Path file, Fence fence) {
        String sha = sha256(file);
        return c.client.write("PUT", c.base + "/blobs/" + jobId + "/" + blobKey, () -> {
            try {
                return HttpRequest.BodyPublishers.ofFile(file);
            } catch (FileNotFoundException e) {
                throw new UncheckedIOException(e);
            }
        }, "application/octet-stream", fence, Map.of("x-content-sha256", sha)).json();
    }

    /** Downloads into {@code target} (replaced whole); false when there is no such blob. */
    public boolean get(String jobId, String blobKey, Path target) {
        HttpRequest.Builder b = HttpRequest.newBuilder(c.client.uri(c.base + "/blobs/" + jobId + "/" + blobKey))
                .timeout(c.client.requestTimeout().multipliedBy(6)).GET();
        if (c.client.token() != null) b.header("authorization", "Bearer " + c.client.token());
        try {
            HttpResponse<InputStream> r = c.client.http().send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = r.body()) {
                if (r.statusCode() == 404) return false;
                if (r.statusCode() >= 400) {
                    throw LeaseholdException.of(r.statusCode(), LeaseholdClient.JSON.readTree(in.readAllBytes()));
                }
                Path tmp = Files.createTempFile(target.toAbsolutePath().getParent(), ".blob", ".part");
                try {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                } finally {
                    Files.deleteIfExists(tmp);
                }
                return true;
            }
        } catch (IOException e) {
            throw new LeaseholdException.Unavailable("NetworkError", "GET blob " + jobId + "/" + blobKey + ": " + e, 0, null, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LeaseholdException.Unavailable("Interrupted", "interrupted", 0, null, e);
        }
    }

    /** The job's blobs, every page of them, by key (the server pages by scan: a blob it
     * lists twice is kept once). */
    public List<JsonNode> list(String jobId) {
        Map<String, JsonNode> byKey = new TreeMap<>();
        for (JsonNode b : c.pages(c.base + "/blobs/" + jobId, "blobs")) byKey.put(b.path("blobKey").asText(), b);
        return List.copyOf(byKey.values());
    }

    public boolean delete(String jobId, String blobKey, Fence fence) {
        return c.client.write("DELETE", c.base + "/blobs/" + jobId + "/" + blobKey, () -> null, null, fence, null)
                .json().path("deleted").asBoolean();
    }

    public long deleteAll(String jobId, Fence fence) {
        return c.client.write("DELETE", c.base + "/blobs/" + jobId, () -> null, null, fence, null).json().path("deleted").asLong();
    }

    static String sha256(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) d.update(buf, 0, n);
            return HexFormat.of().formatHex(d.digest());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

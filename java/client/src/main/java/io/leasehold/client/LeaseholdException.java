package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * An error answered by leasehold as {@code {error, message, statusCode}}, or a transport failure.
 * The subclasses say what the caller should do; {@link #code()} is the server's {@code error}.
 */
public class LeaseholdException extends RuntimeException {
    private final String code;
    private final int statusCode;
    private final JsonNode body;

    public LeaseholdException(String code, String message, int statusCode, JsonNode body, Throwable cause) {
        super(code + ": " + message, cause);
        this.code = code;
        this.statusCode = statusCode;
        this.body = body;
    }

    /** The server's {@code error}, such as {@code NotLeader}. */
    public String code() {
        return code;
    }

    /** The HTTP status; 0 for a transport failure. */
    public int statusCode() {
        return statusCode;
    }

    /** The whole error body (with {@code leader}, {@code leadership}, … where the server adds them), or null. */
    public JsonNode body() {
        return body;
    }

    /** The error for an answer with this status and body. */
    static LeaseholdException of(int status, JsonNode body) {
        String code = body != null && body.hasNonNull("error") ? body.get("error").asText() : "HTTP" + status;
        String message = body != null && body.hasNonNull("message") ? body.get("message").asText() : "status " + status;
        switch (code) {
            case "NotLeader":
            case "NotLeadershipOwner":
                return new NotLeader(code, message, status, body);
            case "FencingTokenRequired":
            case "FencingTokenStale":
                return new Fencing(code, message, status, body);
            default:
                break;
        }
        if (status == 503 || status == 429) return new Unavailable(code, message, status, body, null);
        if (status == 404 || status == 410) return new NotFound(code, message, status, body);
        if (status == 409 || status == 422) return new Conflict(code, message, status, body);
        if (status == 401 || status == 403) return new Auth(code, message, status, body);
        if (status >= 400 && status < 500) return new BadRequest(code, message, status, body);
        return new LeaseholdException(code, message, status, body, null);
    }

    /** Not the leader (a {@code 409 NotLeader}, or no live local leadership): stop leading. */
    public static final class NotLeader extends LeaseholdException {
        public NotLeader(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    /** A store write refused by fencing: nothing was written; stop acting as leader. */
    public static final class Fencing extends LeaseholdException {
        Fencing(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    /** Another 409 or a 422: the store's own conflicts. */
    public static final class Conflict extends LeaseholdException {
        Conflict(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    public static final class NotFound extends LeaseholdException {
        NotFound(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    public static final class BadRequest extends LeaseholdException {
        BadRequest(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    public static final class Auth extends LeaseholdException {
        Auth(String code, String message, int status, JsonNode body) {
            super(code, message, status, body, null);
        }
    }

    /** 503, 429, a timeout or a network failure: the outcome of a write is unknown. */
    public static final class Unavailable extends LeaseholdException {
        Unavailable(String code, String message, int status, JsonNode body, Throwable cause) {
            super(code, message, status, body, cause);
        }
    }
}

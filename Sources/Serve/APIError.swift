import Foundation
import Hummingbird
import Logging

/// A refused request, as the OpenAI API reports it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, CustomStringConvertible, Equatable, Sendable {
    public var status: Int
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `not_found_error`, …
    public var type: String
    /// The request field at fault (`messages[0].content[1].image_url`), when one is.
    public var param: String?
    /// A short machine-readable code (`model_not_found`, `queue_full`, …).
    public var code: String?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status) \(type): \(message)" }

    static func malformed(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: "invalid_request")
    }
    static func unsupported(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 422, message: message, type: "invalid_request_error", param: param, code: "unsupported_content")
    }
    static func undecodable(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 422, message: message, type: "invalid_request_error", param: param, code: "invalid_image")
    }
    static func tooLarge(_ message: String, param: String? = nil, code: String) -> APIError {
        APIError(status: 413, message: message, type: "invalid_request_error", param: param, code: code)
    }
    static func forbiddenFile(_ message: String, param: String?) -> APIError {
        APIError(status: 403, message: message, type: "permission_error", param: param, code: "file_not_allowed")
    }
    static let unauthorized = APIError(status: 401, message: "Incorrect API key provided (send it as 'Authorization: Bearer KEY')",
                                       type: "authentication_error", code: "invalid_api_key")
    static func unknownModel(_ name: String, served: String) -> APIError {
        APIError(status: 404, message: "The model '\(name)' does not exist; this server serves '\(served)'",
                 type: "not_found_error", param: "model", code: "model_not_found")
    }
    static func unknownRoute(_ method: String, _ path: String) -> APIError {
        APIError(status: 404, message: "No route \(method) \(path)", type: "not_found_error", code: "unknown_url")
    }
    static func queueFull(_ limit: Int) -> APIError {
        APIError(status: 429, message: "The server is busy: \(limit) requests already wait for the model; retry later",
                 type: "rate_limit_error", code: "queue_full")
    }
    static let loading = APIError(status: 503, message: "The model is still loading; retry shortly", type: "server_error", code: "not_ready")
    static let stopping = APIError(status: 503, message: "The server is shutting down", type: "server_error", code: "shutting_down")
    static func failed(_ message: String) -> APIError {
        APIError(status: 500, message: message, type: "server_error", code: "internal_error")
    }

    /// The JSON body: `{"error": {...}}`, with explicit nulls as OpenAI sends them.
    public var body: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }

    func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == 429 || status == 503 { headers[.retryAfter] = "1" }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error a route throws (and Hummingbird's own: unknown route, body too large) into
/// OpenAI's error JSON.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError {
            switch error.status.code {
            case 404: return APIError.unknownRoute(request.method.rawValue, request.uri.path).response()
            case 405: return APIError(status: 405, message: "\(request.method.rawValue) is not allowed on \(request.uri.path)",
                                      type: "invalid_request_error", code: "method_not_allowed").response()
            case 413: return APIError.tooLarge("The request body is too large", code: "body_too_large").response()
            default:
                return APIError(status: Int(error.status.code), message: error.body ?? error.status.reasonPhrase,
                                type: error.status.code >= 500 ? "server_error" : "invalid_request_error").response()
            }
        } catch {
            logger.error("\(request.method.rawValue) \(request.uri.path): \(error)")
            return APIError.failed("\(error)").response()
        }
    }
}

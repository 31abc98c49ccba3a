package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"vidmatte"
)

// statusByCode is the one table that maps the error vocabulary to HTTP
// statuses. Nothing else in the daemon chooses an error status.
var statusByCode = map[vidmatte.Code]int{
	vidmatte.CodeInvalid:             http.StatusBadRequest,
	vidmatte.CodeUnauthenticated:     http.StatusUnauthorized,
	vidmatte.CodeInsufficientCredits: http.StatusPaymentRequired,
	vidmatte.CodeNotFound:            http.StatusNotFound,
	vidmatte.CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	vidmatte.CodeConflict:            http.StatusConflict,
	vidmatte.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	vidmatte.CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	vidmatte.CodeUnprocessable:       http.StatusUnprocessableEntity,
	vidmatte.CodeRateLimited:         http.StatusTooManyRequests,
	vidmatte.CodeInternal:            http.StatusInternalServerError,
	vidmatte.CodeUnavailable:         http.StatusServiceUnavailable,
	vidmatte.CodeTimeout:             http.StatusGatewayTimeout,
	// A job canceled under a request is a conflict with its state.
	vidmatte.CodeCanceled: http.StatusConflict,
}

// StatusOf returns the HTTP status of an error code; an unknown code is a
// 500.
func StatusOf(code vidmatte.Code) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the structured payload of every non-2xx response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      vidmatte.Code `json:"code"`
	Message   string        `json:"message"`
	Field     string        `json:"field,omitempty"`
	RequestID string        `json:"request_id"`
}

// writeError answers err as the structured error payload. Internal errors
// are logged in full with the request id and answered generically.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := vidmatte.ErrorCode(err)
	if code == "" {
		code = vidmatte.CodeInternal
	}
	status := StatusOf(code)
	msg := vidmatte.ErrorMessage(err)
	var field string
	var ve *vidmatte.Error
	if errors.As(err, &ve) && code != vidmatte.CodeInternal {
		field = ve.Field
	}
	log := loggerFrom(r.Context())
	if status >= 500 {
		log.Error("request failed", slog.String("code", string(code)), slog.Any("error", err))
	} else {
		log.Debug("request refused", slog.String("code", string(code)), slog.String("message", msg))
	}
	if code == vidmatte.CodeInternal {
		msg = "internal error; quote request id " + requestIDFrom(r.Context()) + " when reporting it"
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, Field: field, RequestID: requestIDFrom(r.Context())}})
}

// writeJSON answers v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value written is made of plain types; this cannot happen
		// short of a programming error, which must still not be plain text.
		b = []byte(`{"error":{"code":"internal_error","message":"internal error","request_id":""}}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

package hook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/ony-ai/ony/client"
)

// shortError says in a few words why a request failed, for the model and stderr. It names the API's
// stable error code, never a message that could quote the request, and never a URL or token.
func shortError(err error) string {
	var ae *client.Error
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized:
			return fmt.Sprintf("the Ony server did not accept the device token (%d %s)", ae.Status, ae.Code)
		case http.StatusForbidden:
			return fmt.Sprintf("the Ony server refused this device (%d %s)", ae.Status, ae.Code)
		case http.StatusRequestEntityTooLarge:
			return fmt.Sprintf("the request is larger than the Ony server accepts (%d %s); lower --max-payload-bytes", ae.Status, ae.Code)
		}
		if ae.Status >= 500 {
			return fmt.Sprintf("the Ony server failed (%d %s)", ae.Status, ae.Code)
		}
		return fmt.Sprintf("the Ony server refused the request (%d %s)", ae.Status, ae.Code)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return "the request to the Ony server timed out"
	case errors.As(err, &dns):
		return "cannot reach the Ony server (host not found)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "cannot reach the Ony server (connection refused)"
	case errors.As(err, &ne) && ne.Timeout():
		return "cannot reach the Ony server (timed out)"
	case errors.As(err, &ne):
		return "cannot reach the Ony server (network error)"
	}
	return "unexpected response from the Ony server"
}

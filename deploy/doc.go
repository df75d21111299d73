// Package deploy holds no code: its tests keep the systemd unit (ony.service here) and the
// repository's Dockerfile in step with the module and the server's defaults.
package deploy

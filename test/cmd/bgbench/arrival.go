package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
)

// stampArrivals asks the kernel to note when each answer reaches c's
// socket, so that a latency ends when the answer arrives, not when the load
// generator, which shares the machine's cores with CoreDNS, gets round to
// reading it. (bgbench runs on Linux only: it reads /proc too.)
func stampArrivals(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}

// arrival is the kernel's time of arrival, in Unix ns, from a datagram's
// control messages.
func arrival(oob []byte) (int64, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			// struct timespec on a 64-bit Linux: seconds, then nanoseconds.
			sec, nsec := binary.NativeEndian.Uint64(m.Data), binary.NativeEndian.Uint64(m.Data[8:])
			return int64(sec)*1e9 + int64(nsec), nil
		}
	}
	return 0, fmt.Errorf("an answer came without its time of arrival")
}

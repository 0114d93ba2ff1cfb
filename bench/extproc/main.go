// sy-extproc: the bench's External Processing server (envoy.service.ext_proc.v3), the same
// for Switchyard's ext_proc module and Envoy's ext_proc filter. It costs next to nothing, so
// that the bench measures the proxies' side of the protocol, yet it is a real two-way
// processor: it answers every message with CONTINUE and leaves a trace the client can check.
//
//   - request headers: sets request header x-ext-proc: seen
//   - request body (BUFFERED): sets request header x-ext-proc: body-<bytes received>, so the
//     client sees that the whole body reached the processor
//   - any other phase a proxy sends: CONTINUE with no change
//
// The upstream nginx echoes x-ext-proc back as a response header (its /ext_proc location), so
// each response tells the load client that the processor was consulted (headers SEND, response
// phases SKIP, nothing else can carry it to the client).
//
//	sy-extproc --listen 127.0.0.1:PORT
//
// Prints "listening ADDR" on stdout once it accepts connections.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extproc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const traceHeader = "x-ext-proc"

type server struct {
	extproc.UnimplementedExternalProcessorServer
}

// setHeader is a CONTINUE that replaces (append: false) the trace header on the request.
func setHeader(value string) *extproc.CommonResponse {
	return &extproc.CommonResponse{
		Status: extproc.CommonResponse_CONTINUE,
		HeaderMutation: &extproc.HeaderMutation{SetHeaders: []*core.HeaderValueOption{{
			Header: &core.HeaderValue{Key: traceHeader, RawValue: []byte(value)},
			Append: wrapperspb.Bool(false),
		}}},
	}
}

func answer(req *extproc.ProcessingRequest) *extproc.ProcessingResponse {
	cont := &extproc.CommonResponse{Status: extproc.CommonResponse_CONTINUE}
	switch r := req.Request.(type) {
	case *extproc.ProcessingRequest_RequestHeaders:
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extproc.HeadersResponse{Response: setHeader("seen")}}}
	case *extproc.ProcessingRequest_RequestBody:
		n := len(r.RequestBody.GetBody())
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestBody{
			RequestBody: &extproc.BodyResponse{Response: setHeader("body-" + strconv.Itoa(n))}}}
	case *extproc.ProcessingRequest_RequestTrailers:
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extproc.TrailersResponse{}}}
	case *extproc.ProcessingRequest_ResponseHeaders:
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extproc.HeadersResponse{Response: cont}}}
	case *extproc.ProcessingRequest_ResponseBody:
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_ResponseBody{
			ResponseBody: &extproc.BodyResponse{Response: cont}}}
	case *extproc.ProcessingRequest_ResponseTrailers:
		return &extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extproc.TrailersResponse{}}}
	}
	return nil
}

// Process answers each message of one HTTP stream, in order, until the proxy half-closes or
// cancels the side stream (Envoy cancels it at the end of every request).
func (server) Process(stream extproc.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := answer(req)
		if resp == nil {
			return fmt.Errorf("unknown processing request %T", req.Request)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("sy-extproc: %v", err)
	}
	s := grpc.NewServer()
	extproc.RegisterExternalProcessorServer(s, server{})
	fmt.Fprintf(os.Stdout, "listening %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		log.Fatalf("sy-extproc: %v", err)
	}
}

// Stand-in for "k6/net/grpc": a Client that records load, connect and
// invoke and answers every call with record.grpcRespond's response; the
// status codes are grpc-go's (k6 uses them).
import { record } from './record.js';

export class Client {
  load(importPaths, ...files) {
    record.grpc.push({ op: 'load', importPaths, files });
  }
  connect(address, params) {
    record.grpc.push({ op: 'connect', address, params: params || null });
    if (record.grpcConnectFailures > 0) {
      record.grpcConnectFailures--;
      throw new Error('connection refused (stand-in)');
    }
  }
  invoke(url, request, params) {
    const call = { op: 'invoke', url, request, params: params || null };
    record.grpc.push(JSON.parse(JSON.stringify(call)));
    return record.grpcRespond(call);
  }
}

export const StatusOK = 0;
export const StatusCanceled = 1;
export const StatusUnknown = 2;
export const StatusInvalidArgument = 3;
export const StatusDeadlineExceeded = 4;
export const StatusNotFound = 5;
export const StatusAlreadyExists = 6;
export const StatusPermissionDenied = 7;
export const StatusResourceExhausted = 8;
export const StatusFailedPrecondition = 9;
export const StatusAborted = 10;
export const StatusOutOfRange = 11;
export const StatusUnimplemented = 12;
export const StatusInternal = 13;
export const StatusUnavailable = 14;
export const StatusDataLoss = 15;
export const StatusUnauthenticated = 16;

export default {
  Client, StatusOK, StatusCanceled, StatusUnknown, StatusInvalidArgument, StatusDeadlineExceeded, StatusNotFound,
  StatusAlreadyExists, StatusPermissionDenied, StatusResourceExhausted, StatusFailedPrecondition, StatusAborted,
  StatusOutOfRange, StatusUnimplemented, StatusInternal, StatusUnavailable, StatusDataLoss, StatusUnauthenticated,
};

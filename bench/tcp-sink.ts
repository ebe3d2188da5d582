import net from 'node:net';

/**
 * The plain-TCP peer of the loopback benchmark: counts what one connection sends
 * and answers with the byte count once the sender ends. Run as its own process so
 * that it has a core of its own, like the relay.
 */
const server = net.createServer((socket) => {
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  socket.on('end', () => socket.end(JSON.stringify({ bytes }) + '\n'));
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening ${address.port}\n`);
});
process.stdin.on('end', () => server.close(() => process.exit(0))).resume();

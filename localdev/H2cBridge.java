// The KCL's Kinesis client speaks only HTTP/2 (KinesisClientUtil sets it; the multilang
// daemon offers no switch), and over http:// that is h2c with prior knowledge, which moto's
// HTTP/1.1 server cannot answer. This bridge, on loopback, takes the daemon's HTTP/2 requests
// and passes each one to the emulator as HTTP/1.1, the answer back as HTTP/2. Local runs only;
// run with the KCL's own jars (netty is among them), as a single-file program:
//   java -cp 'tools/kcl/jars/*' localdev/H2cBridge.java <port> <emulator URL>
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

public class H2cBridge {
    // Set by the HTTP/1.1 client itself, or meaningless on an HTTP/2 request.
    static final Set<String> SKIPPED = Set.of(
            "host", "connection", "content-length", "expect", "upgrade", "te",
            "transfer-encoding", "keep-alive", "x-http2-stream-id", "x-http2-scheme");

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        URI upstream = URI.create(args[1]);
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        NioEventLoopGroup group = new NioEventLoopGroup(2);
        new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel connection) {
                        connection.pipeline().addLast(
                                Http2FrameCodecBuilder.forServer().build(),
                                new Http2MultiplexHandler(new ChannelInitializer<Channel>() {
                                    @Override
                                    protected void initChannel(Channel stream) {
                                        stream.pipeline().addLast(
                                                new Http2StreamFrameToHttpObjectCodec(true),
                                                new HttpObjectAggregator(16 * 1024 * 1024),
                                                new Forward(client, upstream));
                                    }
                                }));
                    }
                })
                .bind("127.0.0.1", port)
                .sync();
        System.out.println("h2c bridge on 127.0.0.1:" + port + " -> " + upstream);
    }

    static class Forward extends SimpleChannelInboundHandler<FullHttpRequest> {
        final HttpClient client;
        final URI upstream;

        Forward(HttpClient client, URI upstream) {
            this.client = client;
            this.upstream = upstream;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
            HttpRequest.Builder out = HttpRequest.newBuilder(upstream.resolve(request.uri()))
                    .timeout(Duration.ofSeconds(60))
                    .method(request.method().name(),
                            HttpRequest.BodyPublishers.ofByteArray(ByteBufUtil.getBytes(request.content())));
            for (Map.Entry<String, String> header : request.headers()) {
                String name = header.getKey().toLowerCase();
                if (!SKIPPED.contains(name) && !name.startsWith(":")) {
                    out.header(header.getKey(), header.getValue());
                }
            }
            client.sendAsync(out.build(), HttpResponse.BodyHandlers.ofByteArray())
                    .whenComplete((answer, error) -> ctx.executor().execute(() -> {
                        FullHttpResponse response;
                        if (error != null) {
                            response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                                    HttpResponseStatus.BAD_GATEWAY, Unpooled.EMPTY_BUFFER);
                        } else {
                            response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                                    HttpResponseStatus.valueOf(answer.statusCode()),
                                    Unpooled.wrappedBuffer(answer.body()));
                            answer.headers().map().forEach((name, values) -> {
                                if (!SKIPPED.contains(name.toLowerCase()) && !name.startsWith(":")) {
                                    response.headers().add(name, values);
                                }
                            });
                        }
                        response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH,
                                response.content().readableBytes());
                        ctx.writeAndFlush(response);
                    }));
        }
    }
}

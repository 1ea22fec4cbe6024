//! The API's protobuf schema (`proto/giftrank/v1/ranker.proto`), compiled by `build.rs`:
//! the messages, the `Ranker` gRPC server and client stubs, and the codec they use; and
//! their conversion to and from the ranking core's types ([`convert`]). Serving them over
//! gRPC is [`crate::grpc`]'s, and as `application/x-protobuf` bodies `crate::http`'s.

pub mod convert;

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// Package `giftrank.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/giftrank.v1.rs"));
}

/// tonic's prost codec, except that a message that does not parse is the sender's fault:
/// `INVALID_ARGUMENT` (a 400, as a malformed JSON body is), not the `INTERNAL` of tonic
/// and of gRPC's status-code table, which would count as a server error in our metrics.
#[derive(Debug)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

/// Decodes one message; see [`Codec`].
#[derive(Debug)]
pub struct MessageDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("body: {e}")))
    }
}
